import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A small real filesystem for one test: a tmpfs (`mount -t tmpfs -o size=..,nr_inodes=..`)
/// or an ext4 image made with mkfs.ext4 and loop-mounted (it has blocks reserved for root, so
/// "free" and "free for root" differ). Tests run as root. Unmount it in `defer`.
final class SmallFilesystem {
    let mountPoint: String
    /// The ext4 image file; nil for a tmpfs.
    let image: String?
    private var mounted = true

    private init(mountPoint: String, image: String?) {
        self.mountPoint = mountPoint
        self.image = image
    }

    /// A tmpfs of `size` (mount's syntax: `8m`) with at most `inodes` inodes, at `mountPoint`
    /// (created when missing).
    static func tmpfs(at mountPoint: String, size: String, inodes: Int? = nil,
                      file: StaticString = #filePath, line: UInt = #line) throws -> SmallFilesystem {
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let options = "size=\(size),mode=0755" + (inodes.map { ",nr_inodes=\($0)" } ?? "")
        let run = try Sandbox.execute("/usr/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", mountPoint])
        guard run.status == 0 else {
            XCTFail("this test needs root and tmpfs: mount: \(run.stderr)", file: file, line: line)
            throw NSError(domain: "SmallFilesystem", code: 1, userInfo: [NSLocalizedDescriptionKey: run.stderr])
        }
        return SmallFilesystem(mountPoint: mountPoint, image: nil)
    }

    /// An ext4 filesystem in a `megabytes` MiB image at `image`, with `reservedPercent` of its
    /// blocks reserved for root (`mkfs.ext4 -m`), loop-mounted at `mountPoint`.
    static func ext4(at mountPoint: String, image: String, megabytes: Int, reservedPercent: Int,
                     file: StaticString = #filePath, line: UInt = #line) throws -> SmallFilesystem {
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: image, contents: nil), file: file, line: line)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
        try handle.truncate(atOffset: UInt64(megabytes) << 20)
        try handle.close()
        let mkfs = try Sandbox.execute("/usr/sbin/mkfs.ext4", ["-q", "-F", "-m", "\(reservedPercent)", image])
        XCTAssertEqual(mkfs.status, 0, "mkfs.ext4: \(mkfs.stderr)", file: file, line: line)
        let run = try Sandbox.execute("/usr/bin/mount", ["-o", "loop", image, mountPoint])
        guard run.status == 0 else {
            XCTFail("this test needs root and loop devices: mount: \(run.stderr)", file: file, line: line)
            throw NSError(domain: "SmallFilesystem", code: 1, userInfo: [NSLocalizedDescriptionKey: run.stderr])
        }
        return SmallFilesystem(mountPoint: mountPoint, image: image)
    }

    /// Unmounts it (a loop mount frees its loop device: mount sets autoclear). Fails the test
    /// when it is busy.
    func unmount(file: StaticString = #filePath, line: UInt = #line) {
        guard mounted else { return }
        mounted = false
        let run = try? Sandbox.execute("/usr/bin/umount", [mountPoint])
        XCTAssertEqual(run?.status, 0, "umount \(mountPoint): \(run?.stderr ?? "")", file: file, line: line)
        if let image { try? FileManager.default.removeItem(atPath: image) }
    }

    deinit { unmount() }

    /// statvfs, in bytes and inodes.
    struct Space: Equatable {
        var device: UInt64
        var totalBytes: Int64
        /// For unprivileged writers (f_bavail), and for root (f_bfree).
        var freeBytes: Int64
        var freeBytesForRoot: Int64
        var totalInodes: Int64
        var freeInodes: Int64
        var blockSize: Int64

        /// df's Use%: used over used plus available.
        var usedPercent: Double {
            let used = totalBytes - freeBytesForRoot
            return Double(used) * 100 / Double(used + freeBytes)
        }
    }

    func space() throws -> Space {
        var vfs = statvfs()
        guard statvfs(mountPoint, &vfs) == 0 else { throw NSError(domain: "SmallFilesystem", code: Int(errno)) }
        var st = stat()
        guard stat(mountPoint, &st) == 0 else { throw NSError(domain: "SmallFilesystem", code: Int(errno)) }
        let block = Int64(vfs.f_frsize)
        return Space(device: UInt64(st.st_dev), totalBytes: Int64(vfs.f_blocks) * block, freeBytes: Int64(vfs.f_bavail) * block,
                     freeBytesForRoot: Int64(vfs.f_bfree) * block, totalInodes: Int64(vfs.f_files), freeInodes: Int64(vfs.f_favail),
                     blockSize: block)
    }

    /// Fills it with a plain, allocated file (posix_fallocate) at `path` (default: `filler`
    /// at the top) so that `leaving` bytes stay free for unprivileged writers (f_bavail), or
    /// for root when `forRoot`; returns the free bytes then measured.
    @discardableResult
    func fill(leaving: Int64, forRoot: Bool = false, at path: String? = nil,
              file: StaticString = #filePath, line: UInt = #line) throws -> Int64 {
        let target = path ?? mountPoint + "/filler"
        let before = try space()
        let free = forRoot ? before.freeBytesForRoot : before.freeBytes
        var bytes = (free - leaving) / before.blockSize * before.blockSize
        XCTAssertGreaterThan(bytes, 0, "\(mountPoint) has \(free) bytes free, not more than \(leaving)", file: file, line: line)
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0, "cannot create \(target)", file: file, line: line)
        defer { close(fd) }
        // ext4 may need a few metadata blocks for the extents: shrink until it fits.
        while bytes > 0, posix_fallocate(fd, 0, off_t(bytes)) != 0 { bytes -= before.blockSize }
        let after = try space()
        return forRoot ? after.freeBytesForRoot : after.freeBytes
    }

    /// Creates empty files until only `leaving` inodes stay free (for unprivileged writers).
    func fillInodes(leaving: Int64, in directory: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = directory ?? mountPoint + "/inodes"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let count = try space().freeInodes - leaving
        XCTAssertGreaterThan(count, 0, file: file, line: line)
        for i in 0..<max(0, count) {
            XCTAssertTrue(FileManager.default.createFile(atPath: "\(dir)/empty-\(i)", contents: nil), file: file, line: line)
        }
        XCTAssertEqual(try space().freeInodes, leaving, file: file, line: line)
    }
}

/// Bytes and blocks of one file, as stat(2) says (lstat: a link is not followed).
struct FileBlocks {
    var size: Int64
    /// st_blocks × 512: what it holds on disk.
    var allocated: Int64
    var isRegular: Bool
    var isSymlink: Bool

    init?(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        size = Int64(st.st_size)
        allocated = Int64(st.st_blocks) * 512
        isRegular = st.st_mode & S_IFMT == S_IFREG
        isSymlink = st.st_mode & S_IFMT == S_IFLNK
    }
}

/// A database, its backup directory and a temp directory (temp_dir and SQLITE_TMPDIR both)
/// placed where a test puts them, usually on a `SmallFilesystem`, with the tools run against
/// them. The config file stays the sandbox's.
final class DiskWorld {
    let box: Sandbox
    let db: String
    let backups: String
    let tmp: String
    /// The database's directory, spelled as the tools print it.
    let liveDir: String

    /// `db` at `live/abathur.db`, backups at `backups`, temp at `tmp`, all under `root` unless given.
    init(_ box: Sandbox, root: String, backups: String? = nil, tmp: String? = nil) throws {
        self.box = box
        liveDir = root + "/live"
        db = liveDir + "/abathur.db"
        self.backups = backups ?? root + "/backups"
        self.tmp = tmp ?? root + "/tmp"
        for dir in [liveDir, self.tmp] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    }

    /// What every tool run gets: the places, by environment.
    var env: [String: String] {
        ["ABATHUR_DB": db, "ABATHUR_BACKUP_DIR": backups, "ABATHUR_TEMP_DIR": tmp, "SQLITE_TMPDIR": tmp, "TMPDIR": tmp]
    }

    func makeDatabase(rows: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try Sandbox.execute(Binaries.demo, ["create", db, "--rows", "\(rows)"])
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
    }

    func diskcheck(_ args: [String], env extra: [String: String] = [:]) throws -> Run {
        try box.run("abathur-diskcheck", args, env: env.merging(extra) { $1 })
    }

    /// A backup taken at `time` (the test clock); returns its file name.
    @discardableResult
    func backup(at time: Int, _ args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try box.run("abathur-backup", args, env: env.merging(["ABATHUR_NOW": "\(time)"]) { $1 })
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        return (run.stdout.trimmingCharacters(in: .whitespacesAndNewlines) as NSString).lastPathComponent
    }

    /// The `result` object of a `--json` run.
    func result(_ run: Run, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any],
                                     "one JSON document: \(run.stdout) \(run.stderr)", file: file, line: line)
        return try XCTUnwrap(document["result"] as? [String: Any], "\(document)", file: file, line: line)
    }

    /// SQL through the sqlite3 CLI (read-write).
    func sql(_ statement: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let run = try Sandbox.execute("/usr/bin/sqlite3", [db, statement])
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
    }
}
