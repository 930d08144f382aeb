import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// One SQLite connection, closed in `deinit`. The `sqlite3*` never leaves this type.
public final class Connection {
    public enum Mode: Sendable {
        /// `SQLITE_OPEN_READONLY` without create: a missing path is an error, never a new
        /// empty database (FACTS.md 4).
        case readOnly
        /// Read-only, and the `-shm` opened read-only too (`readonly_shm=1`): reads a hot WAL
        /// without writing a byte to any live file. Needs an existing `-wal` and `-shm`.
        case readOnlySharedMemory
        /// `immutable=1`: reads the main file alone and creates nothing, not even a `-wal`.
        /// Only correct while nothing writes; the caller must prove that afterwards.
        case immutable
        /// Read-write, still without create.
        case readWrite
        /// A private in-memory database (the path is ignored): scratch space for SQLite to
        /// parse SQL in.
        case memory
    }

    let handle: OpaquePointer
    public let path: String
    /// How it was opened, so that another thread can open the same file the same way
    /// (`ParallelIntegrityCheck`).
    public let mode: Mode
    public let busyTimeoutMs: Int

    public init(path: String, mode: Mode, busyTimeoutMs: Int = 5000) throws(SQLiteError) {
        var db: OpaquePointer?
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        flags |= mode == .readWrite ? SQLITE_OPEN_READWRITE : mode == .memory ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY : SQLITE_OPEN_READONLY
        let query: String
        switch mode {
        case .memory: query = ""
        case .readOnly, .readWrite: query = ""
        case .readOnlySharedMemory: query = "?readonly_shm=1"
        case .immutable: query = "?immutable=1"
        }
        // A URI keeps a path with '?' or '#' literal: escape it rather than hand it to the parser.
        let rc = sqlite3_open_v2(mode == .memory ? "file::memory:" : Connection.uri(for: path) + query, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            let errnoValue = db.map { sqlite3_system_errno($0) } ?? 0
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: ResultCode(rawValue: rc), message: message, sql: nil, systemErrno: errnoValue, path: path)
        }
        handle = db
        self.path = path
        self.mode = mode
        self.busyTimeoutMs = busyTimeoutMs
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, Int32(clamping: busyTimeoutMs))
    }

    deinit {
        // "If sqlite3_close_v2() is called with unfinalized prepared statements ... the
        // database connection becomes an unusable zombie which will automatically be
        // deallocated when the last prepared statement is finalized": safe in any order.
        sqlite3_close_v2(handle)
    }

    /// The `file:` URI of `path` (sqlite.org/uri.html): every byte that is not an unreserved
    /// ASCII character or `/` is percent-encoded, so UTF-8 (`ü`), spaces, `%`, `?`, `#` and
    /// control characters all reach the VFS as the same bytes. An absolute path gets an empty
    /// authority (`file:///...`), so that a path starting with `//` is never read as a host.
    static func uri(for path: String) -> String {
        let absolute = Paths.absolute(path)
        var escaped = ""
        for byte in absolute.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                escaped.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                escaped += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return (absolute.hasPrefix("/") ? "file://" : "file:") + escaped
    }

    func error(_ rc: Int32, sql: String?) -> SQLiteError {
        SQLiteError(code: ResultCode(rawValue: sqlite3_extended_errcode(handle)),
                    message: String(cString: sqlite3_errmsg(handle)), sql: sql,
                    systemErrno: sqlite3_system_errno(handle), path: path)
    }

    /// Closing this connection will leave a WAL as it is: no checkpoint, no deletion.
    public func keepWALOnClose() throws(SQLiteError) {
        let rc = abathur_sqlite3_no_checkpoint_on_close(handle, 1)
        guard rc == SQLITE_OK else { throw error(rc, sql: nil) }
    }

    /// `sqlite3_wal_checkpoint_v2(TRUNCATE)` on the main database: unlike the PRAGMA it
    /// does not need to parse the schema, so it works on a database whose schema is damaged.
    /// Returns false when another connection kept it from completing.
    public func checkpointTruncate() throws(SQLiteError) -> Bool {
        var log: Int32 = 0, checkpointed: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(handle, "main", SQLITE_CHECKPOINT_TRUNCATE, &log, &checkpointed)
        if rc == SQLITE_BUSY { return false }
        guard rc == SQLITE_OK else { throw error(rc, sql: nil) }
        return true
    }

    /// Runs SQL that returns no rows (or whose rows are not wanted).
    public func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql: sql) }
    }

    /// Runs exactly one statement, refusing text that holds more than one: SQL read out of a
    /// damaged file (a schema) must not smuggle in a second statement.
    public func executeOne(_ sql: String) throws(SQLiteError) {
        var stmt: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let rc = sql.withCString { sqlite3_prepare_v2(handle, $0, -1, &stmt, &tail) }
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql: sql) }
        let statement = Statement(stmt, connection: self, sql: sql)
        if let tail, !String(cString: tail).allSatisfy({ $0.isWhitespace || $0 == ";" }) {
            throw SQLiteError(code: ResultCode(rawValue: SQLITE_MISUSE), message: "more than one statement", sql: sql, systemErrno: 0, path: path)
        }
        while try statement.step() {}
    }

    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql: sql) }
        return Statement(stmt, connection: self, sql: sql)
    }

    /// Every row of a query, each as its columns' text (NULL as nil).
    public func rows(_ sql: String) throws(SQLiteError) -> [[String?]] {
        let statement = try prepare(sql)
        var result: [[String?]] = []
        while try statement.step() {
            result.append((0..<statement.columnCount).map { statement.text(at: $0) })
        }
        return result
    }

    /// The first column of the first row as an integer (e.g. a PRAGMA value).
    public func integer(_ sql: String) throws(SQLiteError) -> Int64 {
        let statement = try prepare(sql)
        guard try statement.step() else { return 0 }
        return statement.int64(at: 0)
    }

    /// Rows the last INSERT, UPDATE or DELETE changed.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }
}
