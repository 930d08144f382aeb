#if canImport(Glibc)
import Glibc
#endif

/// Reads a live database without writing a byte to it, its `-wal` or its `-shm`, and without
/// creating either. A plain read-only connection would: it creates an empty `-wal` next to a
/// cleanly closed WAL database and rewrites the `-shm`, and opening a hot WAL read-write
/// checkpoints and deletes it (FACTS.md 11).
///
/// - WAL mode and no `-wal`: nothing has written since the last clean close (a `-wal` exists
///   while any connection is open), so the main file alone is the database. Read it with
///   `immutable=1`, then prove that still holds (no `-wal` appeared; the file's size, mtime
///   and change counter did not move). If a writer started, read again the next way.
/// - `-wal` and `-shm`: the service runs, or crashed with a hot WAL. Read through them with
///   the `-shm` opened read-only (`readonly_shm=1`).
/// - `-wal` without `-shm`: SQLite cannot read that WAL without creating a `-shm`, so copy the
///   database and its `-wal` into a private temp directory and read the copy there. A writer
///   in `locking_mode=EXCLUSIVE` keeps its wal-index in heap memory and has exactly these
///   files; a raw copy of them is not a snapshot (FACTS.md 1). So the copy is made only while
///   no process holds a POSIX lock on the database, proven before and after it (with the
///   files unchanged in between); a lock held past the busy timeout is exit 5, naming it.
/// - rollback-journal mode: a read-only connection creates nothing.
public enum LiveReader {
    public static func read<T>(_ path: String, busyTimeoutMs: Int, tempDirectory: String,
                               _ body: (Connection) throws -> T) throws -> T {
        try refuseSpecialCompanions(of: path)
        let before = try Fingerprint(path)
        guard before.isWAL else {
            return try body(try open(path, .readOnly, busyTimeoutMs))
        }
        if try FileStatus.of(path + "-wal") == nil {
            let result = try body(try open(path, .immutable, busyTimeoutMs))
            if try FileStatus.of(path + "-wal") == nil, try Fingerprint(path) == before { return result }
        }
        if try FileStatus.of(path + "-shm") != nil {
            return try body(try open(path, .readOnlySharedMemory, busyTimeoutMs))
        }
        return try readCopy(path, busyTimeoutMs: busyTimeoutMs, tempDirectory: tempDirectory, body)
    }

    /// SQLite opens the `-wal` and `-shm` itself, blocking in open(2) on a FIFO: anything
    /// but a regular file there is refused (exit 7) before SQLite sees it.
    static func refuseSpecialCompanions(of path: String) throws {
        for suffix in ["-wal", "-shm"] {
            var st = stat()
            if stat(path + suffix, &st) == 0, st.st_mode & S_IFMT != S_IFREG {
                throw AbathurError(.unsafePath, path + suffix, "is \(FileDescriptor.kind(mode: st.st_mode)), not a regular file")
            }
        }
    }

    static func open(_ path: String, _ mode: Connection.Mode, _ busyTimeoutMs: Int) throws -> Connection {
        do {
            return try Connection(path: path, mode: mode, busyTimeoutMs: busyTimeoutMs)
        } catch {
            throw error.asAbathurError
        }
    }

    static func readCopy<T>(_ path: String, busyTimeoutMs: Int, tempDirectory: String, _ body: (Connection) throws -> T) throws -> T {
        // The copy lands in temp_dir, which may share a disk with the service: the same
        // budget as every other temp copy (at most 90% used).
        let size = try [path, path + "-wal"].compactMap { try FileStatus.of($0)?.size }.reduce(0, +)
        try SpaceBudget.of(tempDirectory).require(size + (1 << 20), for: "a private copy of the live database and its -wal")
        let directory = SafeFiles.tempPath(in: tempDirectory, tag: "live-copy")
        guard mkdir(directory, 0o700) == 0 else {
            throw AbathurError(Errno.current.kind, directory, "cannot create directory: \(Errno.current)")
        }
        let copy = Paths.join(directory, Paths.basename(path))
        defer {
            for suffix in ["", "-wal", "-shm"] { SafeFiles.removeQuietly(copy + suffix) }
            rmdir(directory)
        }
        let deadline = Clock.monotonicSeconds() + Double(busyTimeoutMs) / 1000
        while true {
            let before = try unlockedState(path, deadline: deadline)
            // The writer closed (its -wal is gone) or a connection in normal locking mode
            // arrived (a -shm): read the way that fits now.
            if before[1] == nil || before[2] != nil {
                let left = Int(max(0, deadline - Clock.monotonicSeconds()) * 1000)
                return try read(path, busyTimeoutMs: left, tempDirectory: tempDirectory, body)
            }
            for suffix in ["", "-wal"] {
                SafeFiles.removeQuietly(copy + suffix)
                try SafeFiles.copy(path + suffix, toNew: copy + suffix, followSymlinks: suffix.isEmpty)
            }
            if try unlockedState(path, deadline: deadline) == before { break }
            // Something wrote while we copied: the copy may mix two states. Copy again.
            if Clock.monotonicSeconds() >= deadline {
                throw AbathurError(.busy, path, "kept changing while being copied, past the busy timeout; its files are not read raw, since a copy is not a snapshot")
            }
        }
        return try body(try open(copy, .readOnly, busyTimeoutMs))
    }

    /// The database's and its `-wal`'s state once no process holds a POSIX lock on the
    /// database (waiting until `deadline`, then exit 5 naming the holder).
    static func unlockedState(_ path: String, deadline: Double) throws -> [FileStatus?] {
        while true {
            let holders = try Holders.posixLocks(path).filter { $0.path == path }
            if holders.isEmpty {
                return [try FileStatus.of(path), try FileStatus.of(path + "-wal"), try FileStatus.of(path + "-shm")]
            }
            if Clock.monotonicSeconds() >= deadline {
                let who = holders.map(\.description).joined(separator: "; ")
                throw AbathurError(.busy, path, "locked past the busy timeout: \(who) (a writer in exclusive locking mode?); its files are not read raw, since a copy is not a snapshot")
            }
            Clock.sleep(seconds: 0.05)
        }
    }

    /// What changes when anything writes the main file: size, mtime, the header's change
    /// counter.
    struct Fingerprint: Equatable {
        var status: FileStatus
        var changeCounter: UInt32
        var isWAL: Bool

        init(_ path: String) throws {
            let (header, _) = try DatabaseHeader.read(path, followSymlinks: true)
            guard let status = try FileStatus.of(path) else { throw AbathurError(.notFound, path, "disappeared while being read") }
            self.status = status
            changeCounter = header.changeCounter
            isWAL = header.isWAL
        }
    }
}
