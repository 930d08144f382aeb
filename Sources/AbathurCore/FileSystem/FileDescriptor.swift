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

    /// The process's stdout, borrowed: never closed here.
    public static var standardOutput: FileDescriptor {
        let fd = FileDescriptor(raw: 1, path: "<stdout>")
        fd.owned = false
        return fd
    }

    /// The process's stdin, borrowed: never closed here.
    public static var standardInput: FileDescriptor {
        let fd = FileDescriptor(raw: 0, path: "<stdin>")
        fd.owned = false
        return fd
    }

    /// Opens an existing file for reading; by default a symlink at the last component is
    /// refused (ELOOP), since backups and manifests are never links.
    public static func openForReading(_ path: String, followSymlinks: Bool = false) throws -> FileDescriptor {
        do {
            let flags = O_RDONLY | O_CLOEXEC | (followSymlinks ? 0 : O_NOFOLLOW)
            let fd = try Syscall.retrying { open(path, flags) }
            return FileDescriptor(raw: fd, path: path)
        } catch {
            throw AbathurError(error.exitCode, path, error.rawValue == ELOOP ? "is a symlink; refusing to follow it" : "cannot open: \(error)")
        }
    }

    /// Creates a new file that must not exist yet (`O_CREAT|O_EXCL|O_NOFOLLOW`), mode 0600.
    public static func createExclusive(_ path: String) throws -> FileDescriptor {
        do {
            let fd = try Syscall.call(.open) {
                open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600))
            }
            return FileDescriptor(raw: fd, path: path)
        } catch {
            throw AbathurError(error.exitCode, path, "cannot create: \(error)")
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
                throw AbathurError(error.exitCode, path, "write failed: \(error)")
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
            throw AbathurError(error.exitCode, path, "read failed: \(error)")
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
            throw AbathurError(error.exitCode, path, "fsync failed: \(error)")
        }
    }

    public func status() throws -> FileStatus {
        var st = stat()
        do {
            try Syscall.retrying { fstat(raw, &st) }
        } catch {
            throw AbathurError(error.exitCode, path, "cannot stat: \(error)")
        }
        return FileStatus(st)
    }

    /// Closes now, reporting an error that `close` returns (NFS reports write errors here).
    public func close() throws {
        guard raw >= 0, owned else { return }
        let fd = raw
        raw = -1
        if Glibc.close(fd) != 0 && errno != EINTR {
            throw AbathurError(Errno.current.exitCode, path, "close failed: \(Errno.current)")
        }
    }
}
