/// The kernel's table of file locks (`/proc/locks`), read without opening any of the locked
/// files: the one way to name every process that holds a lock on the database or its `-shm`
/// while this process has its own SQLite connection open (FACTS.md 14: opening and closing
/// the file here would drop that connection's locks).
public struct FileLockEntry: Sendable, Equatable, Encodable {
    /// POSIX, OFDLCK, FLOCK, LEASE.
    public var kind: String
    public var exclusive: Bool
    /// -1 for an open-file-description lock, which names no process.
    public var pid: Int32
    public var device: UInt64
    public var inode: UInt64
    public var start: Int64
    /// Inclusive; nil for "to the end of the file".
    public var end: Int64?
    /// Waiting for the lock, not holding it.
    public var waiting: Bool

    public func covers(_ offset: Int64) -> Bool { start <= offset && (end.map { offset <= $0 } ?? true) }
}

public enum LockTable {
    /// Every lock on the file at `path` (by device and inode), holders and waiters; empty
    /// when the file does not exist or `/proc/locks` cannot be read.
    public static func locks(on path: String, table: String = "/proc/locks") -> [FileLockEntry] {
        guard let status = try? FileStatus.of(path), let text = try? TextFile.read(table) else { return [] }
        return parse(text).filter { $0.inode == status.inode && $0.device == status.device }
    }

    /// Lines like `1: POSIX  ADVISORY  READ 2345 fd:01:1234 128 128` or
    /// `2: -> OFDLCK ADVISORY WRITE -1 08:02:5678 0 EOF`.
    static func parse(_ text: String) -> [FileLockEntry] {
        text.split(separator: "\n").compactMap { line in
            var fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard !fields.isEmpty else { return nil }
            fields.removeFirst()  // "1:"
            let waiting = fields.first == "->"
            if waiting { fields.removeFirst() }
            guard fields.count >= 6, let pid = Int32(fields[3]) else { return nil }
            let id = fields[4].split(separator: ":")
            guard id.count == 3, let major = UInt64(id[0], radix: 16), let minor = UInt64(id[1], radix: 16),
                  let inode = UInt64(id[2]), let start = Int64(fields[5]) else { return nil }
            let end = fields.count > 6 ? Int64(fields[6]) : nil
            return FileLockEntry(kind: fields[0], exclusive: fields[2] == "WRITE", pid: pid,
                                 device: makeDevice(major: major, minor: minor), inode: inode, start: start, end: end, waiting: waiting)
        }
    }

    /// glibc's `makedev`: the `st_dev` a major and minor number make.
    static func makeDevice(major: UInt64, minor: UInt64) -> UInt64 {
        (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32)
    }
}
