#if canImport(Glibc)
import Glibc
#endif

/// What `lstat` says about a path: the facts the safety rules need.
public struct FileStatus: Sendable, Equatable {
    public var mode: UInt32
    public var size: Int64
    public var modified: Int64
    public var modifiedNanoseconds: Int64
    public var device: UInt64
    public var inode: UInt64
    /// Bytes of disk it holds (`st_blocks`): what removing it frees; less than `size` for a
    /// sparse file.
    public var allocatedBytes: Int64

    init(_ st: stat) {
        mode = st.st_mode
        size = Int64(st.st_size)
        modified = Int64(st.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(st.st_mtim.tv_nsec)
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        allocatedBytes = Int64(st.st_blocks) * 512
    }

    public var isRegular: Bool { mode & S_IFMT == S_IFREG }
    public var isDirectory: Bool { mode & S_IFMT == S_IFDIR }
    public var isSymlink: Bool { mode & S_IFMT == S_IFLNK }
    public var permissions: UInt32 { mode & 0o7777 }

    /// `lstat`: never follows a symlink. Nil when nothing is at `path`.
    public static func of(_ path: String) throws -> FileStatus? {
        var st = stat()
        if lstat(path, &st) == 0 { return FileStatus(st) }
        let error = Errno.current
        if error.rawValue == ENOENT || error.rawValue == ENOTDIR { return nil }
        throw AbathurError(error.kind, path, "cannot stat: \(error)")
    }
}
