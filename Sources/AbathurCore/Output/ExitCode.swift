/// The exit-code table shared by every abathur tool (SPEC.md, "Exit codes").
public enum ExitCode: Int32, Sendable, Codable {
    /// Success, or healthy.
    case success = 0
    /// Healthy enough to run, but something needs attention.
    case warning = 1
    /// The command line or the configuration is wrong.
    case usage = 2
    /// A backup or a restore candidate failed verification.
    case verificationFailed = 3
    /// The database itself is corrupt (or empty, or not an SQLite database).
    case corrupt = 4
    /// Another instance holds the lock, or the database stayed busy past the timeout.
    case busy = 5
    /// Not enough space, detected before writing anything (or the filesystem filled up).
    case noSpace = 6
    /// A precondition was refused: unsafe path, running service, hot WAL, foreign database.
    case refused = 7
    /// An I/O error during the operation.
    case ioError = 8
    /// A bug: something that should not happen did.
    case internalError = 9
}

extension ExitCode {
    /// The code that speaks for several outcomes: the input could not be read at all (8, 5),
    /// then damage (4, then 3), then a refusal (7), then warnings.
    public static func mostSevere(_ codes: [ExitCode]) -> ExitCode {
        let order: [ExitCode] = [.internalError, .ioError, .busy, .noSpace, .corrupt, .verificationFailed, .refused, .usage, .warning]
        return order.first(where: codes.contains) ?? .success
    }
}

extension ExitCode {
    /// SPEC.md's exit code for each kind of error: the one place the mapping is decided.
    public init(_ kind: AbathurError.Kind) {
        switch kind {
        case .usage: self = .usage
        case .damagedBackup, .incompleteBackup, .noBackup, .checkFailed: self = .verificationFailed
        case .notADatabase, .corrupt, .walLoss: self = .corrupt
        case .locked, .busy: self = .busy
        case .noSpace: self = .noSpace
        case .unsafePath, .alreadyExists, .tooLarge, .permission, .foreign, .inUse, .refused: self = .refused
        case .notFound, .crossDevice, .io, .output: self = .ioError
        case .internal: self = .internalError
        }
    }
}

extension AbathurError {
    /// The exit code this error ends a run with (`ExitCode(_ kind:)`).
    public var exitCode: ExitCode { ExitCode(kind) }
}
