#if canImport(Glibc)
import Glibc
#endif

/// A POSIX error number, typed, with its strerror text.
public struct Errno: Error, Equatable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static var current: Errno { Errno(errno) }

    public var description: String { String(cString: strerror(rawValue)).lowercased() }

    /// Out of space in any of its forms: a full filesystem, a quota, or `RLIMIT_FSIZE`.
    public var isNoSpace: Bool { rawValue == ENOSPC || rawValue == EDQUOT || rawValue == EFBIG }

    /// What a failure with this errno means.
    public var kind: AbathurError.Kind {
        if isNoSpace { return .noSpace }
        switch rawValue {
        case EWOULDBLOCK: return .locked
        case EACCES, EPERM, EROFS: return .permission
        case ELOOP: return .unsafePath
        case ENOENT: return .notFound
        case EXDEV: return .crossDevice
        default: return .io
        }
    }
}

/// The operations that go through the choke point, and so can be made to fail in tests.
public enum SyscallOperation: String, Sendable, CaseIterable {
    case open, write, fsync, rename, unlink
}

/// Every syscall that changes files goes through here: it retries `EINTR`, turns `-1` into a
/// typed `Errno`, and (in debug builds only) is where tests inject faults.
///
/// Fault injection is set with `ABATHUR_FAULT=OP:WHAT@N[,OP:WHAT@N...]`, where OP is one of
/// `open write fsync rename unlink`, WHAT is an errno name (`ENOSPC`, `EIO`, `EDQUOT`,
/// `EFBIG`) or `crash` (the process SIGKILLs itself), and N counts calls of that OP from 1.
/// `ABATHUR_FAULT_TRACE=FILE` appends one line per call (its OP) to FILE, so a test can visit
/// exactly the call numbers a run makes.
public enum Syscall {
    @discardableResult
    public static func call<T: BinaryInteger>(_ op: SyscallOperation, _ body: () -> T) throws(Errno) -> T {
        #if ABATHUR_FAULT_INJECTION
        try FaultInjection.before(op)
        #endif
        return try retrying(body)
    }

    /// Retries EINTR for calls that are not subject to fault injection (reads, stat, flock).
    @discardableResult
    public static func retrying<T: BinaryInteger>(_ body: () -> T) throws(Errno) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let error = Errno.current
            if error.rawValue == EINTR { continue }
            throw error
        }
    }
}

#if ABATHUR_FAULT_INJECTION
enum FaultInjection {
    struct Rule { var op: SyscallOperation; var errno: Int32?; var at: Int }

    nonisolated(unsafe) static var rules: [Rule] = parse(getenv("ABATHUR_FAULT").map { String(cString: $0) } ?? "")
    nonisolated(unsafe) static var counts: [SyscallOperation: Int] = [:]

    static func parse(_ text: String) -> [Rule] {
        text.split(separator: ",").compactMap { item in
            let parts = item.split(separator: "@")
            guard parts.count == 2, let at = Int(parts[1]) else { return nil }
            let head = parts[0].split(separator: ":")
            guard head.count == 2, let op = SyscallOperation(rawValue: String(head[0])) else { return nil }
            let names: [String: Int32] = ["ENOSPC": ENOSPC, "EIO": EIO, "EDQUOT": EDQUOT, "EFBIG": EFBIG]
            if head[1] == "crash" { return Rule(op: op, errno: nil, at: at) }
            guard let number = names[String(head[1])] else { return nil }
            return Rule(op: op, errno: number, at: at)
        }
    }

    /// Where each call is traced (`ABATHUR_FAULT_TRACE`), opened once, close-on-exec.
    nonisolated(unsafe) static var trace: Int32 = getenv("ABATHUR_FAULT_TRACE").map {
        open($0, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
    } ?? -1

    static func before(_ op: SyscallOperation) throws(Errno) {
        if trace >= 0 {
            let line = Array((op.rawValue + "\n").utf8)
            _ = line.withUnsafeBytes { write(trace, $0.baseAddress, $0.count) }
        }
        guard !rules.isEmpty else { return }
        let n = (counts[op] ?? 0) + 1
        counts[op] = n
        for rule in rules where rule.op == op && rule.at == n {
            guard let number = rule.errno else {
                kill(getpid(), SIGKILL)
                pause()
                return
            }
            throw Errno(number)
        }
    }
}
#endif
