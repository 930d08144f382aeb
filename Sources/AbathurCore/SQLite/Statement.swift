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

    /// Advances to the next row: true when there is one, false when done.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw connection.error(rc, sql: sql)
    }

    public var columnCount: Int { Int(sqlite3_column_count(handle)) }

    public func text(at column: Int) -> String? {
        guard let pointer = sqlite3_column_text(handle, Int32(column)) else { return nil }
        return String(cString: pointer)
    }

    public func int64(at column: Int) -> Int64 { sqlite3_column_int64(handle, Int32(column)) }
}
