#if canImport(Glibc)
import Glibc
#endif

public enum Signals {
    static let termination = [SIGINT, SIGTERM, SIGHUP]

    /// Runs `body` with SIGINT, SIGTERM and SIGHUP ignored, then puts the previous handlers
    /// back: for the stretch where an interruption would leave the service stopped.
    public static func ignoringTermination<T>(_ body: () throws -> T) rethrows -> T {
        let previous = termination.map { signal($0, SIG_IGN) }
        defer { for (number, handler) in zip(termination, previous) { signal(number, handler) } }
        return try body()
    }
}
