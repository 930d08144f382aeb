import CSQLite

/// SQLite's online backup API from one connection's "main" database to another's.
///
/// FACTS.md 2: one `sqlite3_backup_step(b, -1)` copies the whole database inside one read
/// transaction, a consistent snapshot while writers go on. To step in chunks (for a progress
/// bar) the caller must hold a read transaction open on the source for the whole copy, or the
/// copy restarts whenever another connection writes.
public final class OnlineBackup {
    let handle: OpaquePointer
    let destination: Connection
    let source: Connection

    public init(from source: Connection, to destination: Connection) throws(SQLiteError) {
        guard let handle = sqlite3_backup_init(destination.handle, "main", source.handle, "main") else {
            // "If an error occurs within sqlite3_backup_init(), then NULL is returned and an
            // error code and error message are stored in the destination database connection."
            throw destination.error(sqlite3_errcode(destination.handle), sql: nil)
        }
        self.handle = handle
        self.destination = destination
        self.source = source
    }

    deinit {
        // finish releases the backup's locks on the error path too.
        sqlite3_backup_finish(handle)
    }

    /// Copies up to `pages` pages (-1: all). True when the copy is complete. BUSY and LOCKED
    /// are thrown so that the caller decides how often to retry.
    public func step(pages: Int32) throws(SQLiteError) -> Bool {
        let rc = sqlite3_backup_step(handle, pages)
        switch rc {
        case SQLITE_DONE: return true
        case SQLITE_OK: return false
        default:
            throw SQLiteError(code: ResultCode(rawValue: rc), message: String(cString: sqlite3_errstr(rc)),
                              sql: nil, systemErrno: sqlite3_system_errno(destination.handle), path: destination.path)
        }
    }

    public var remaining: Int { Int(sqlite3_backup_remaining(handle)) }
    public var pageCount: Int { Int(sqlite3_backup_pagecount(handle)) }
}
