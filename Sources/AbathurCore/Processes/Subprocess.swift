import CLibc
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program with an argument vector (never a shell string; SPEC.md safety rules),
/// found on `PATH`, with its stdout and stderr captured together, and a deadline after which
/// it is killed.
public enum Subprocess {
    public struct Outcome: Sendable {
        /// The exit status, or 128 + the signal that ended it.
        public var status: Int32
        public var output: String
        public var timedOut: Bool

        public var succeeded: Bool { status == 0 && !timedOut }

        /// The last non-empty line of output, for a one-line diagnostic.
        public var lastLine: String {
            output.split(separator: "\n").last.map { String($0).trimmingWhitespace() } ?? ""
        }
    }

    /// Splits a configured command line on spaces and tabs; no quoting, no shell.
    public static func words(_ command: String) -> [String] {
        command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// A command setting, split into words; quotes are refused, since no shell removes them.
    public static func words(_ settings: Settings, _ key: SettingKey) throws -> [String] {
        let text = settings.string(key)
        if text.contains("\"") || text.contains("'") {
            throw settings.invalid(key, "quotes are not supported (the command runs without a shell); put the command in a script")
        }
        return words(text)
    }

    public static func run(_ argv: [String], environment extra: [String: String] = [:], timeout: Double) throws -> Outcome {
        guard let program = argv.first else { throw AbathurError.usage("empty command") }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw AbathurError(.io, program, "cannot create a pipe: \(Errno.current)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        // Nothing else this process has open (whatever its own parent leaked to it included):
        // a background process the command leaves must not keep someone's pipe open.
        abathur_spawn_close_from(&actions, 3)

        var environment = Settings.processEnvironment()
        for (key, value) in extra { environment[key] = value }
        let envStrings = environment.map { "\($0.key)=\($0.value)" }
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = envStrings.map { strdup($0) } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        // Its own process group (a Ctrl-C at the terminal is not its to handle, and a timeout
        // kills the group), and default signal handling: the tools ignore SIGPIPE, SIGXFSZ
        // and, while the units are stopped, SIGINT/SIGTERM/SIGHUP; a child should not.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGPIPE, SIGXFSZ] + Signals.termination { sigaddset(&defaults, number) }
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, program, &actions, &attributes, &cArgs, &cEnv)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw AbathurError(.refused, program, "cannot run: \(Errno(rc))")
        }

        var output: [UInt8] = []
        var timedOut = false
        var status: Int32 = 0
        var exited = false
        let deadline = Clock.monotonicSeconds() + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        var open = true
        // Read until the child exits (a background process it left may keep the pipe open
        // forever) or the deadline passes.
        while !exited {
            if waitpid(pid, &status, WNOHANG) == pid { exited = true }
            if Clock.monotonicSeconds() >= deadline && !exited {
                timedOut = true
                kill(-pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                break
            }
            guard open else { Clock.sleep(seconds: 0.02); continue }
            var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, exited ? 0 : 100)
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { open = false; continue }
            if output.count < 64 << 10 { output += buffer[0..<n] }
        }
        // What it wrote just before exiting, without waiting for anyone else on the pipe.
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        while open, output.count < 64 << 10 {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            output += buffer[0..<n]
        }
        close(fds[0])
        let normal = status & 0x7f == 0
        let code = normal ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Outcome(status: code, output: String(decoding: output, as: UTF8.self), timedOut: timedOut)
    }
}
