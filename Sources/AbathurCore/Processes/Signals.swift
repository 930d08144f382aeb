#if canImport(Glibc)
import Glibc
#endif

public enum Signals {
    static let termination = [SIGINT, SIGTERM, SIGHUP]

    /// Runs `body` with SIGINT, SIGTERM and SIGHUP ignored, then puts the previous handlers
    /// back: for the stretch where an interruption would leave the service stopped. With the
    /// waiter of `TerminationCleanup` running, the shield is what makes it ignore them (a
    /// signal that arrived just before is handled first: the run exits and stops nothing);
    /// SIG_IGN covers a process that did not install it.
    public static func ignoringTermination<T>(_ body: () throws -> T) rethrows -> T {
        TerminationCleanup.enterShield()
        let previous = termination.map { signal($0, SIG_IGN) }
        defer {
            for (number, handler) in zip(termination, previous) { signal(number, handler) }
            TerminationCleanup.leaveShield()
        }
        return try body()
    }
}
