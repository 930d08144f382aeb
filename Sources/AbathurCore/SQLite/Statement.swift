import CSQLite

/// A prepared statement, finalized in `deinit`.
public final class Statement {
    let handle: OpaquePointer
    let connection: Connection
    public let sql: String

    init(_ handle: OpaquePointer, connection: Connection, sql: String) {
        self.handle = handle
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    public func bind(_ text: String, at index: Int) throws(SQLiteError) {
        let rc = abathur_sqlite3_bind_text_transient(handle, Int32(index), text, -1)
        guard rc == SQLITE_OK else { throw connection.error(rc, sql: sql) }
    }

    public func bind(_ value: Int64, at index: Int) throws(SQLiteError) {
        let rc = sqlite3_bind_int64(handle, Int32(index), value)
        guard rc == SQLITE_OK else { throw connection.error(rc, sql: sql) }
    }

    /// Advances to the next row: true when there is one, false when done.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw connection.error(rc, sql: sql)
    }

    public func reset() { sqlite3_reset(handle) }

    public var columnCount: Int { Int(sqlite3_column_count(handle)) }

    public func text(at column: Int) -> String? {
        guard let pointer = sqlite3_column_text(handle, Int32(column)) else { return nil }
        return String(cString: pointer)
    }

    public func int64(at column: Int) -> Int64 { sqlite3_column_int64(handle, Int32(column)) }
}
