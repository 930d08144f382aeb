#if canImport(Glibc)
import Glibc
#endif

/// SIGINT, SIGTERM and SIGHUP remove the current run's temp files before the process exits
/// (issue 9, item 8), and are ignored while the units are stopped (`Signals.ignoringTermination`).
///
/// No signal handler runs our code: `install()` blocks the three signals in the main thread
/// before any other thread exists (every later thread inherits the mask), and one dedicated
/// thread takes them with `sigwait`. That thread is an ordinary thread, so it may lock, allocate
/// and unlink; it removes every registered temp path and `_exit`s with 128 + the signal.
///
/// One mutex orders everything: the registry, the shield, and the decision to exit. The waiter
/// holds it from the decision to `_exit`, so a run either is terminated before a shield is up
/// (`enterShield` blocks until the process is gone) or the signal arrives under the shield and
/// is ignored; the units are never stopped by a run that is about to exit.
///
/// Children get the default dispositions and an empty mask (`Subprocess`, posix_spawn
/// attributes), so a blocked signal here never reaches a `systemctl` or a health command.
public enum TerminationCleanup {
    final class State: @unchecked Sendable {
        let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
            let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
            mutex.initialize(to: pthread_mutex_t())
            pthread_mutex_init(mutex, nil)
            return mutex
        }()
        var paths: Set<String> = []
        var shield = 0
        var installed = false
        /// The signals the waiter takes, fixed at `install` (before any shield sets SIG_IGN).
        var waited = sigset_t()
        var tool = "abathur-tools"

        func locked<T>(_ body: () throws -> T) rethrows -> T {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body()
        }
    }

    static let state = State()

    /// Starts the waiter thread. Call first thing in `main`, before anything starts a thread.
    /// A signal the run inherited as ignored (`nohup` ignores SIGHUP) stays ignored.
    public static func install(tool: String) {
        var set = terminationSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let already = state.locked { () -> Bool in
            defer { state.installed = true; state.tool = tool; state.waited = set }
            return state.installed
        }
        guard !already, Signals.termination.contains(where: { sigismember(&set, $0) == 1 }) else { return }
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { _ in TerminationCleanup.waitForSignals() }, nil)
        if rc != 0 {
            // Without the waiter, the signals keep their default action: unblock them again.
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            state.locked { state.installed = false }
        } else {
            pthread_detach(thread)
        }
    }

    /// Paths this run created or is about to create under a temp name. Files (and their
    /// SQLite companions `-journal`, `-wal`, `-shm`) are unlinked, directories emptied of
    /// what we put there and removed.
    public static func register(_ path: String) {
        state.locked { _ = state.paths.insert(path) }
    }

    /// Once a temp path is gone (removed, or renamed to its final name) or must outlive a
    /// signal (a temp manifest whose `.gz` is about to get its final name).
    public static func unregister(_ path: String) {
        state.locked { _ = state.paths.remove(path) }
    }

    /// While a shield is up the termination signals are ignored. Blocks while the waiter is
    /// removing temp files on its way out, so the process exits before the shield is up.
    static func enterShield() { state.locked { state.shield += 1 } }
    static func leaveShield() { state.locked { state.shield -= 1 } }

    /// The termination signals whose disposition is not SIG_IGN.
    static func terminationSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for number in Signals.termination {
            var current = sigaction()
            if sigaction(number, nil, &current) == 0, let handler = current.__sigaction_handler.sa_handler,
               unsafeBitCast(handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }
            sigaddset(&set, number)
        }
        return set
    }

    private static func waitForSignals() -> UnsafeMutableRawPointer? {
        var set = state.locked { state.waited }
        while true {
            var number: Int32 = 0
            guard sigwait(&set, &number) == 0 else { continue }
            pthread_mutex_lock(state.mutex)
            if state.shield > 0 {
                pthread_mutex_unlock(state.mutex)
                continue
            }
            // The mutex stays held: nothing registers, shields or creates through the registry
            // any more; the process ends here.
            var removed = 0
            for path in state.paths where removeTemp(path) { removed += 1 }
            let name = number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : number == SIGHUP ? "SIGHUP" : "signal \(number)"
            let line = "\(state.tool): error: interrupted by \(name); removed \(removed) temp file(s) of this run\n"
            var bytes = Array(line.utf8)
            bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress!, $0.count) }
            _exit(128 + number)
        }
    }

    /// Removes one registered temp path; true when something was there.
    static func removeTemp(_ path: String) -> Bool {
        var found = false
        for companion in DatabaseFiles(path).companions where unlink(companion) == 0 { found = true }
        var st = stat()
        guard lstat(path, &st) == 0 else { return found }
        if st.st_mode & S_IFMT == S_IFDIR {
            SafeFiles.removeTempDirectory(path)
            return true
        }
        return unlink(path) == 0 || found
    }
}
