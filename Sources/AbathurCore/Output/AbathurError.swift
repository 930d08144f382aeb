/// The one error type the tools report: what went wrong, with which file, and which exit code
/// it maps to. Messages are lower-case with no trailing period, so that a diagnostic reads
/// `abathur-backup: error: /var/lib/abathur/abathur.db: not an SQLite database`.
public struct AbathurError: Error, Sendable, CustomStringConvertible {
    /// The exit code this failure maps to.
    public var code: ExitCode
    /// The file the problem is about, when there is one.
    public var path: String?
    /// What went wrong.
    public var message: String

    public init(_ code: ExitCode, _ path: String?, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }

    public static func usage(_ message: String, path: String? = nil) -> AbathurError {
        AbathurError(.usage, path, message)
    }

    public static func `internal`(_ message: String) -> AbathurError {
        AbathurError(.internalError, nil, message)
    }
}
