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

    /// Binds parameter `index` (1-based). Text is bound as the bytes it holds: UTF-8, or
    /// UTF-16 in the byte order of `encoding` (a database's own text encoding).
    public func bind(_ value: SQLValue, at index: Int32, encoding: TextEncoding = .utf8) throws(SQLiteError) {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(handle, index)
        case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
        case .real(let v): rc = sqlite3_bind_double(handle, index, v)
        case .text(let bytes):
            let form: Int32 = encoding == .utf8 ? SQLITE_UTF8 : encoding == .utf16le ? SQLITE_UTF16LE : SQLITE_UTF16BE
            rc = bytes.withUnsafeBytes { raw in
                // An empty text still needs a pointer: NULL would bind NULL.
                Statement.empty.withUnsafeBufferPointer { empty in
                    sqlite3_bind_text64(handle, index, raw.baseAddress?.assumingMemoryBound(to: CChar.self) ?? empty.baseAddress!,
                                        UInt64(bytes.count), SQLITE_TRANSIENT_POINTER, UInt8(form))
                }
            }
        case .blob(let bytes):
            // A NULL pointer would bind NULL: an empty blob is zeroblob(0).
            rc = bytes.isEmpty ? sqlite3_bind_zeroblob(handle, index, 0) : bytes.withUnsafeBytes { raw in
                sqlite3_bind_blob64(handle, index, raw.baseAddress, UInt64(bytes.count), SQLITE_TRANSIENT_POINTER)
            }
        }
        guard rc == SQLITE_OK else { throw connection.error(rc, sql: sql) }
    }

    static let empty: [CChar] = [0]

    /// Makes the statement ready to run again with new bindings.
    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }
}

/// A database's text encoding (header offset 56): how its text values' bytes read.
public enum TextEncoding: UInt32, Sendable {
    case utf8 = 1, utf16le = 2, utf16be = 3
}

/// `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the call returns.
let SQLITE_TRANSIENT_POINTER = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
