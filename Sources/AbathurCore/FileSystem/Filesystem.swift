#if canImport(Glibc)
import Glibc
#endif

/// A mounted filesystem, as statvfs(3) and stat(2) describe it from a path on it. The device
/// id tells when two paths share one, so its space is counted once.
public struct Filesystem: Sendable, Equatable, Encodable {
    /// The path it was looked up by.
    public var path: String
    /// `st_dev` of that path: equal for every path on the same filesystem.
    public var device: UInt64
    /// Size of the filesystem (`f_blocks`).
    public var totalBytes: Int64
    /// Free for an unprivileged writer (`f_bavail`): what df shows as available.
    public var freeBytes: Int64
    /// Free for root, the reserved blocks included (`f_bfree`).
    public var freeBytesForRoot: Int64
    public var totalInodes: Int64
    /// Free inodes for an unprivileged writer (`f_favail`) and for root (`f_ffree`).
    public var freeInodes: Int64
    public var freeInodesForRoot: Int64
    /// Mounted read-only (`ST_RDONLY`).
    public var readOnly: Bool

    /// Bytes in use: what neither root nor anyone else may write any more.
    public var usedBytes: Int64 { totalBytes - freeBytesForRoot }

    /// The filesystem holding `path` (links followed). Throws, naming the path, when it
    /// cannot be read.
    public static func of(_ path: String) throws -> Filesystem {
        var info = statvfs()
        var st = stat()
        do {
            try Syscall.retrying { statvfs(path, &info) }
            try Syscall.retrying { stat(path, &st) }
        } catch {
            throw AbathurError(error.kind, path, "cannot read free space: \(error)")
        }
        let unit = Int64(info.f_frsize)
        return Filesystem(path: path, device: UInt64(st.st_dev), totalBytes: Int64(info.f_blocks) * unit,
                          freeBytes: Int64(info.f_bavail) * unit, freeBytesForRoot: Int64(info.f_bfree) * unit,
                          totalInodes: Int64(info.f_files), freeInodes: Int64(info.f_favail), freeInodesForRoot: Int64(info.f_ffree),
                          readOnly: info.f_flag & UInt(ST_RDONLY) != 0)
    }

    /// The filesystem a path that may not exist yet would be created on: that of its nearest
    /// existing ancestor (a safety root, a backup directory created on demand).
    public static func holding(_ path: String) throws -> Filesystem {
        try of(existingAncestor(of: path))
    }

    /// The nearest of `path` and its ancestors that exists.
    public static func existingAncestor(of path: String) -> String {
        var existing = path
        while (try? FileStatus.of(existing)) == nil, existing != "/", existing != ".", !existing.isEmpty {
            existing = Paths.directory(of: existing)
        }
        return existing.isEmpty ? "." : existing
    }

    /// The filesystems holding `paths`, each once, in the order first met.
    public static func distinct(holding paths: [String]) throws -> [Filesystem] {
        var seen: [Filesystem] = []
        for path in paths {
            let filesystem = try holding(path)
            if !seen.contains(where: { $0.device == filesystem.device }) { seen.append(filesystem) }
        }
        return seen
    }
}
