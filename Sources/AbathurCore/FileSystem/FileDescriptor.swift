#if canImport(Glibc)
import Glibc
#endif

/// An open file descriptor, owned: it is closed exactly once, in `close()` or in `deinit`.
public final class FileDescriptor {
    public private(set) var raw: Int32
    public let path: String

    init(raw: Int32, path: String) {
        self.raw = raw
        self.path = path
    }

    deinit { if raw >= 0 && owned { _ = Glibc.close(raw) } }

    private var owned = true

    /// The process's stdout, borrowed: never closed here. When stdout was closed at start
    /// (`StandardDescriptors`), writing to it fails with EBADF, as it would have.
    public static var standardOutput: FileDescriptor {
        let fd = FileDescriptor(raw: StandardDescriptors.wasClosed(1) ? -1 : 1, path: "stdout")
        fd.owned = false
        return fd
    }

    /// The process's stdin, borrowed: never closed here. When stdin was closed at start,
    /// reading it fails with EBADF, as it would have.
    public static var standardInput: FileDescriptor {
        let fd = FileDescriptor(raw: StandardDescriptors.wasClosed(0) ? -1 : 0, path: "stdin")
        fd.owned = false
        return fd
    }

    /// Opens an existing file for reading; by default a symlink at the last component is
    /// refused (ELOOP), since backups and manifests are never links.
    ///
    /// Never blocks in open(2): the file is opened with `O_NONBLOCK` (a FIFO without a writer,
    /// or a device, would otherwise hang the run while it holds a lock), its type is checked
    /// with fstat, and only then is `O_NONBLOCK` cleared. Anything but a regular file is
    /// refused (exit 7) unless `anyType` (restore's `--force`).
    public static func openForReading(_ path: String, followSymlinks: Bool = false, anyType: Bool = false) throws -> FileDescriptor {
        let fd: Int32
        do {
            let flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (followSymlinks ? 0 : O_NOFOLLOW)
            fd = try Syscall.retrying { open(path, flags) }
        } catch {
            if error.rawValue == ELOOP { throw AbathurError(.unsafePath, path, "is a symlink; refusing to follow it") }
            // open(2) on a socket fails with ENXIO: say what it is, as for a FIFO.
            if error.rawValue == ENXIO, let kind = FileDescriptor.kind(path: path, followSymlinks: followSymlinks) {
                throw AbathurError(.unsafePath, path, "is \(kind), not a regular file")
            }
            throw AbathurError(error.kind, path, "cannot open: \(error)")
        }
        let file = FileDescriptor(raw: fd, path: path)
        let status = try file.status()
        if !status.isRegular && !anyType {
            throw AbathurError(.unsafePath, path, "is \(FileDescriptor.kind(mode: status.mode)), not a regular file")
        }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 else {
            throw AbathurError(Errno.current.kind, path, "cannot open: \(Errno.current)")
        }
        return file
    }

    /// What kind of file a mode describes, for a diagnostic: "a FIFO", "a directory", ...
    static func kind(mode: UInt32) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symlink"
        default: return "a special file"
        }
    }

    static func kind(path: String, followSymlinks: Bool) -> String? {
        var st = stat()
        guard (followSymlinks ? stat(path, &st) : lstat(path, &st)) == 0 else { return nil }
        return kind(mode: st.st_mode)
    }

    /// Creates a new file that must not exist yet (`O_CREAT|O_EXCL|O_NOFOLLOW`), mode 0600.
    public static func createExclusive(_ path: String) throws -> FileDescriptor {
        do {
            let fd = try Syscall.call(.open) {
                open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600))
            }
            return FileDescriptor(raw: fd, path: path)
        } catch {
            throw AbathurError(error.kind, path, "cannot create: \(error)")
        }
    }

    /// Writes every byte, or throws: short writes are continued, EINTR is retried.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n: Int
            do {
                n = try Syscall.call(.write) { Glibc.write(raw, bytes.baseAddress! + offset, bytes.count - offset) }
            } catch {
                throw AbathurError(error.kind, path, "write failed: \(error)")
            }
            offset += n
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (buffer) in try write(buffer) }
    }

    /// Reads up to `buffer.count` bytes; 0 means end of file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        do {
            return try Syscall.retrying { Glibc.read(raw, buffer.baseAddress!, buffer.count) }
        } catch {
            throw AbathurError(error.kind, path, "read failed: \(error)")
        }
    }

    /// Reads until `buffer` is full or the file ends; returns how many bytes were read.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var total = 0
        while total < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if n == 0 { break }
            total += n
        }
        return total
    }

    /// Reads to the end of the file in chunks of `size` bytes, one buffer for the whole file.
    public func forEachChunk(size: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: size)
        try buffer.withUnsafeMutableBytes { buffer in
            while true {
                let n = try read(into: buffer)
                if n == 0 { return }
                try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
        }
    }

    public func sync() throws {
        do {
            try Syscall.call(.fsync) { fsync(raw) }
        } catch {
            throw AbathurError(error.kind, path, "fsync failed: \(error)")
        }
    }

    public func status() throws -> FileStatus {
        var st = stat()
        do {
            try Syscall.retrying { fstat(raw, &st) }
        } catch {
            throw AbathurError(error.kind, path, "cannot stat: \(error)")
        }
        return FileStatus(st)
    }

    /// Closes now, reporting an error that `close` returns (NFS reports write errors here).
    public func close() throws {
        guard raw >= 0, owned else { return }
        let fd = raw
        raw = -1
        if Glibc.close(fd) != 0 && errno != EINTR {
            throw AbathurError(Errno.current.kind, path, "close failed: \(Errno.current)")
        }
    }
}

/// Descriptors 0, 1 and 2 as the process found them. A closed one is put on /dev/null at
/// start-up, before anything opens a file, as careful daemons do: otherwise the first file we
/// open (the backup directory's lock file) takes its number, and whatever was meant for stdout
/// lands in it. Which ones were closed is remembered, so that writing to a stdout that was
/// closed (or reading such a stdin) still fails, with EBADF, instead of vanishing into /dev/null.
public enum StandardDescriptors {
    nonisolated(unsafe) static var closedAtStart: Set<Int32> = []

    /// Opens /dev/null on each of 0, 1 and 2 that is closed. Returns false when one stays
    /// closed (no /dev/null): the caller must not go on.
    public static func ensureOpen() -> Bool {
        for fd: Int32 in 0...2 {
            guard fcntl(fd, F_GETFD) == -1, errno == EBADF else { continue }
            // Not O_CLOEXEC: a child (systemctl) inherits its 0-2 from us.
            let opened = open("/dev/null", O_RDWR)
            guard opened >= 0 else { return false }
            if opened != fd {
                guard dup2(opened, fd) == fd else { _ = Glibc.close(opened); return false }
                _ = Glibc.close(opened)
            }
            closedAtStart.insert(fd)
        }
        return true
    }

    /// Whether `fd` (0, 1 or 2) was closed when the process started.
    public static func wasClosed(_ fd: Int32) -> Bool { closedAtStart.contains(fd) }
}

extension FileDescriptor {
    /// Opens an existing regular file of ours for reading and writing in place (a temp file
    /// being built); never follows a symlink.
    public static func openForUpdate(_ path: String) throws -> FileDescriptor {
        do {
            let fd = try Syscall.call(.open) { open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC) }
            return FileDescriptor(raw: fd, path: path)
        } catch {
            throw AbathurError(error.kind, path, "cannot open for writing: \(error)")
        }
    }

    /// Reads exactly `count` bytes at `offset` (pread); fewer only at the end of the file.
    public func read(count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let total = try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return Array(bytes.prefix(total))
    }

    /// Fills `buffer` from `offset` (pread); fewer bytes only at the end of the file. Safe to
    /// call from several threads at once.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var total = 0
        while total < buffer.count {
            let n: Int
            do {
                n = try Syscall.retrying { pread(raw, buffer.baseAddress! + total, buffer.count - total, off_t(offset) + off_t(total)) }
            } catch {
                throw AbathurError(error.kind, path, "read failed: \(error)")
            }
            if n == 0 { break }
            total += n
        }
        return total
    }

    /// Writes every byte at `offset` (pwrite), or throws.
    public func write(_ bytes: [UInt8], at offset: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n: Int
            do {
                n = try Syscall.call(.write) {
                    bytes.withUnsafeBytes { pwrite(raw, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
                }
            } catch {
                throw AbathurError(error.kind, path, "write failed: \(error)")
            }
            done += n
        }
    }

    /// Cuts or extends the file to `size` bytes.
    public func truncate(to size: Int64) throws {
        do {
            try Syscall.call(.write) { ftruncate(raw, off_t(size)) }
        } catch {
            throw AbathurError(error.kind, path, "cannot truncate: \(error)")
        }
    }
}
