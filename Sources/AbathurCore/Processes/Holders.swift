#if canImport(Glibc)
import Glibc
#endif

/// A process that has the database, its `-wal` or its `-shm` open or locked.
public struct Holder: Sendable, Equatable, Encodable, CustomStringConvertible {
    /// -1 when only the lock says so and the lock does not name its owner (an OFD lock).
    public var pid: Int32
    public var command: String
    public var path: String
    /// "open file", "POSIX lock" or "SQLite lock".
    public var how: String

    public var description: String {
        pid > 0 ? "pid \(pid) (\(command)) has \(path) (\(how))" : "a process has \(path) (\(how))"
    }
}

/// Proves that nothing holds a database before it is swapped (FACTS.md 9: renaming a file over
/// a database that a running process has open loses that process's later commits).
///
/// Three independent looks, none of which writes or creates a file:
/// 1. every `/proc/PID/fd/N` pointing at the database, `-wal`, `-shm` or `-journal` (by
///    device and inode);
/// 2. the POSIX locks SQLite takes (`F_GETLK` on the database's lock bytes and the `-shm`'s
///    lock slots), which also name the holder's pid;
/// 3. SQLite's own exclusive-lock probe (`PRAGMA locking_mode=EXCLUSIVE; BEGIN IMMEDIATE`;
///    FACTS.md 9), with the WAL kept on close and the wal-index in heap memory, so the probe
///    neither checkpoints nor touches the `-shm`. It runs only when a `-wal` exists or the
///    database is not in WAL mode (on a WAL database without one it would create a `-wal`),
///    and not when a `-journal` exists (it would roll that back).
public enum Holders {
    public struct Report: Sendable, Encodable {
        public var holders: [Holder]
        /// What the SQLite probe said, for the timeline.
        public var probe: String
    }

    public static func check(_ database: String) throws -> Report {
        var holders = try openFiles(database)
        for holder in try posixLocks(database) where !holders.contains(where: { $0.pid == holder.pid && $0.path == holder.path }) {
            holders.append(holder)
        }
        let probe = sqliteProbe(database)
        if probe.busy && holders.isEmpty {
            holders.append(Holder(pid: -1, command: "?", path: database, how: "SQLite lock: \(probe.detail)"))
        }
        return Report(holders: holders, probe: probe.detail)
    }

    static func suffixes() -> [String] { ["", "-wal", "-shm", "-journal"] }

    /// Processes with an open descriptor on the database or one of its companion files.
    public static func openFiles(_ database: String) throws -> [Holder] {
        var targets: [(device: UInt64, inode: UInt64, path: String)] = []
        for suffix in suffixes() {
            var st = stat()
            if stat(database + suffix, &st) == 0 { targets.append((UInt64(st.st_dev), UInt64(st.st_ino), database + suffix)) }
        }
        guard !targets.isEmpty else { return [] }
        let me = getpid()
        var holders: [Holder] = []
        for entry in (try? SafeFiles.listDirectory("/proc")) ?? [] {
            guard let pid = Int32(entry), pid != me else { continue }
            let fdDir = "/proc/\(pid)/fd"
            guard let fds = try? SafeFiles.listDirectory(fdDir) else { continue }
            for fd in fds {
                var st = stat()
                guard stat(fdDir + "/" + fd, &st) == 0 else { continue }
                for target in targets where target.device == UInt64(st.st_dev) && target.inode == UInt64(st.st_ino) {
                    let holder = Holder(pid: pid, command: command(of: pid), path: target.path, how: "open file")
                    if !holders.contains(holder) { holders.append(holder) }
                }
            }
        }
        return holders
    }

    /// The POSIX locks SQLite's unix VFS takes: on the database, the pending, reserved and
    /// shared bytes at 1 GiB (`0x40000000`, 512 bytes); on the `-shm`, the eight lock slots
    /// and the "dead man switch" byte at offsets 120-128. An open connection in WAL mode holds
    /// a shared lock on the database and on the `-shm`'s DMS byte.
    public static func posixLocks(_ database: String) throws -> [Holder] {
        var holders: [Holder] = []
        for (suffix, start, length) in [("", 0x4000_0000, 512), ("-shm", 120, 9)] {
            let path = database + suffix
            // O_NONBLOCK: a FIFO where the database or its -shm should be must not hang us.
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var lock = flock()
            lock.l_type = Int16(F_WRLCK)
            lock.l_whence = Int16(SEEK_SET)
            lock.l_start = off_t(start)
            lock.l_len = off_t(length)
            guard fcntl(fd, F_GETLK, &lock) == 0, lock.l_type != Int16(F_UNLCK) else { continue }
            let kind = lock.l_type == Int16(F_WRLCK) ? "write lock" : "read lock"
            let pid = lock.l_pid > 0 ? lock.l_pid : -1
            holders.append(Holder(pid: pid, command: pid > 0 ? command(of: pid) : "?", path: path, how: "POSIX \(kind)"))
        }
        return holders
    }

    /// SQLite's own answer: can this process take an exclusive lock on the database?
    static func sqliteProbe(_ database: String) -> (busy: Bool, detail: String) {
        guard let header = try? DatabaseHeader.read(database, followSymlinks: true).0 else {
            return (false, "skipped: not a readable SQLite database")
        }
        if (try? FileStatus.of(database + "-journal")) != nil {
            // Opening it read-write would roll the hot journal back: a write, before the safety copy.
            return (false, "skipped: a -journal is present")
        }
        if header.isWAL, (try? FileStatus.of(database + "-wal")) == nil {
            return (false, "skipped: WAL database without a -wal (nothing has it open)")
        }
        do {
            let connection = try Connection(path: database, mode: .readWrite, busyTimeoutMs: 0)
            try connection.keepWALOnClose()
            try connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            try connection.execute("BEGIN IMMEDIATE")
            try connection.execute("COMMIT")
            return (false, "exclusive lock taken and released")
        } catch {
            if error.kind == .busy { return (true, "cannot take an exclusive lock: \(error.message)") }
            return (false, "inconclusive: \(error.message)")
        }
    }

    /// `/proc/PID/comm`, or "?".
    static func command(of pid: Int32) -> String {
        guard let text = try? TextFile.read("/proc/\(pid)/comm") else { return "?" }
        return text.trimmingWhitespace().split(separator: "\n").first.map(String.init) ?? "?"
    }
}
