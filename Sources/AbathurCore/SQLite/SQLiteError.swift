import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// An SQLite result code, extended when SQLite gave one.
public struct ResultCode: RawRepresentable, Equatable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The primary code: the low byte of an extended code.
    public var primary: ResultCode { ResultCode(rawValue: rawValue & 0xff) }

    public static let ok = ResultCode(rawValue: SQLITE_OK)
    public static let busy = ResultCode(rawValue: SQLITE_BUSY)
    public static let locked = ResultCode(rawValue: SQLITE_LOCKED)
    public static let full = ResultCode(rawValue: SQLITE_FULL)
    public static let ioerr = ResultCode(rawValue: SQLITE_IOERR)
    public static let corrupt = ResultCode(rawValue: SQLITE_CORRUPT)
    public static let notADatabase = ResultCode(rawValue: SQLITE_NOTADB)
    public static let cantOpen = ResultCode(rawValue: SQLITE_CANTOPEN)
    public static let readOnly = ResultCode(rawValue: SQLITE_READONLY)
    public static let permission = ResultCode(rawValue: SQLITE_PERM)
    public static let done = ResultCode(rawValue: SQLITE_DONE)
    public static let row = ResultCode(rawValue: SQLITE_ROW)
}

/// A failed SQLite call: the extended code, SQLite's message, the SQL that ran, the OS errno
/// SQLite saw, and the database file.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public var code: ResultCode
    public var message: String
    public var sql: String?
    public var systemErrno: Int32
    public var path: String

    public var description: String {
        var text = "\(message) (sqlite code \(code.rawValue))"
        if let sql { text += " in \"\(sql)\"" }
        return text
    }

    /// What this failure means (FACTS.md 16: SQLITE_FULL and an EFBIG write error are both
    /// "no space").
    public var kind: AbathurError.Kind {
        if systemErrno != 0 && Errno(systemErrno).isNoSpace { return .noSpace }
        switch code.primary {
        case .full: return .noSpace
        case .busy, .locked: return .busy
        case .corrupt: return .corrupt
        case .notADatabase: return .notADatabase
        case .readOnly, .permission: return .permission
        case .ioerr, .cantOpen: return .io
        default: return .internal
        }
    }

    public var asAbathurError: AbathurError { AbathurError(kind, path, description) }
}
