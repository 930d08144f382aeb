#if canImport(Glibc)
import Glibc
#endif

/// Temp file, fsync, rename, fsync the directory: how every file the tools write gets its
/// final name, so that nothing half-written ever carries one.
public enum SafeFiles {
    /// Every temp file starts with this: `.abathur-tmp-PID-HEX-TAG`. The pid says whose it is,
    /// so any run can sweep what a killed run left (`sweepTemps`).
    public static let tempPrefix = ".abathur-tmp-"

    /// A fresh temp path in `directory`; `tag` says what it is, for whoever finds it. It is
    /// registered with `TerminationCleanup` (a SIGTERM removes it) until removed or published.
    public static func tempPath(in directory: String, tag: String) -> String {
        let hex = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let path = Paths.join(directory, "\(tempPrefix)\(getpid())-\(hex)-\(tag)")
        TerminationCleanup.register(path)
        return path
    }

    /// Creates a new temp file in `directory` (mode 0600, `O_EXCL|O_NOFOLLOW`).
    public static func createTemp(in directory: String, tag: String) throws -> FileDescriptor {
        try FileDescriptor.createExclusive(tempPath(in: directory, tag: tag))
    }

    /// Gives a complete, fsynced temp file its final name, replacing what had it (rename(2)
    /// is atomic), and makes that durable.
    public static func publish(_ temp: String, as final: String) throws {
        do {
            try Syscall.call(.rename) { rename(temp, final) }
        } catch {
            throw AbathurError(error.kind, final, "cannot rename \(Paths.basename(temp)) into place: \(error)")
        }
        TerminationCleanup.unregister(temp)
        try syncDirectory(Paths.directory(of: final))
    }

    /// Gives `temp` a second, final name that must not exist yet (link(2) never replaces).
    /// The caller fsyncs the directory and removes the temp name.
    public static func link(_ temp: String, as final: String) throws {
        do {
            try Syscall.call(.rename) { Glibc.link(temp, final) }
        } catch {
            if error.rawValue == EEXIST { throw AbathurError(.alreadyExists, final, "already exists; not replacing it") }
            throw AbathurError(error.kind, final, "cannot link \(Paths.basename(temp)) into place: \(error)")
        }
    }

    /// Gives the file at `source` (a symlink followed) a second name, `target`, which must not
    /// exist. False when they are on different filesystems (or the filesystem has no hard
    /// links): the caller copies instead.
    public static func hardLink(_ source: String, toNew target: String) throws -> Bool {
        do {
            try Syscall.call(.rename) { linkat(AT_FDCWD, source, AT_FDCWD, target, AT_SYMLINK_FOLLOW) }
            return true
        } catch {
            if error.rawValue == EXDEV || error.rawValue == EPERM || error.rawValue == EOPNOTSUPP || error.rawValue == EMLINK { return false }
            if error.rawValue == EEXIST { throw AbathurError(.alreadyExists, target, "already exists; not replacing it") }
            throw AbathurError(error.kind, target, "cannot link \(source) to it: \(error)")
        }
    }

    /// Makes the bytes of the file at `path` durable (fsync), however they were written.
    public static func syncFile(_ path: String) throws {
        let file = try FileDescriptor.openForReading(path)
        try file.sync()
        try file.close()
    }

    /// Makes a rename or an unlink in `directory` durable.
    public static func syncDirectory(_ directory: String) throws {
        let fd: Int32
        do {
            fd = try Syscall.retrying { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        } catch {
            throw AbathurError(error.kind, directory, "cannot open directory: \(error)")
        }
        let owned = FileDescriptor(raw: fd, path: directory)
        try owned.sync()
        try owned.close()
    }

    /// Writes `bytes` to `final` the safe way: temp file beside it, fsync, rename, fsync dir.
    /// The file is 0600 unless `mode` says otherwise, set with fchmod so that the umask does
    /// not matter; only what another user must read (Prometheus textfiles, 0644) asks for more.
    public static func writeAtomically(_ bytes: [UInt8], to final: String, mode: mode_t = 0o600) throws {
        let directory = Paths.directory(of: final)
        let file = try createTemp(in: directory, tag: Paths.basename(final))
        do {
            do {
                try Syscall.retrying { fchmod(file.raw, mode) }
            } catch {
                throw AbathurError(error.kind, file.path, "cannot set mode \(String(mode, radix: 8)): \(error)")
            }
            try file.write(bytes)
            try file.sync()
            try file.close()
            try publish(file.path, as: final)
        } catch {
            removeQuietly(file.path)
            throw error
        }
    }

    /// Copies `source` into a new file `target` (mode 0600, `O_EXCL|O_NOFOLLOW`) in chunks,
    /// fsyncing it when `sync`; returns the SHA-256 and size of the bytes copied.
    @discardableResult
    public static func copy(_ source: String, toNew target: String, followSymlinks: Bool = false,
                            sync: Bool = false) throws -> (sha256: String, bytes: Int64) {
        let output = try FileDescriptor.createExclusive(target)
        var hash = SHA256()
        var bytes: Int64 = 0
        try FileDescriptor.openForReading(source, followSymlinks: followSymlinks).forEachChunk { chunk in
            hash.update(chunk)
            bytes += Int64(chunk.count)
            try output.write(chunk)
        }
        if sync { try output.sync() }
        try output.close()
        return (hash.finalizeHex(), bytes)
    }

    /// Removes a file of ours; a missing file is fine.
    public static func remove(_ path: String) throws {
        TerminationCleanup.unregister(path)
        do {
            try Syscall.call(.unlink) { unlink(path) }
        } catch {
            if error.rawValue == ENOENT { return }
            throw AbathurError(error.kind, path, "cannot remove: \(error)")
        }
    }

    /// Best-effort cleanup on an error path, where the first error is the one to report.
    public static func removeQuietly(_ path: String) {
        TerminationCleanup.unregister(path)
        _ = unlink(path)
    }

    /// Removes the temp files and temp directories in `directory` whose creating process is
    /// gone: what killed runs left. Every run calls it at start-up for every directory any tool
    /// writes temp files to (`TempSweep`), and runs under a lock call it again.
    ///
    /// Safe without a lock: a name is touched only when its pid field parses and that process
    /// no longer exists (`kill(pid, 0)` fails with ESRCH), so the temp files of a running
    /// instance, ours or another's, are never touched. A dead run's pid that an unrelated live
    /// process has since taken only delays the sweep (the file is left; nothing wrong is
    /// removed). Only entries owned by this user are removed, checked with `fstatat` without
    /// following links; a symlink that carries our prefix is not ours and is left alone. A
    /// temp directory is removed only when it holds nothing but regular files and temp
    /// directories of ours, through descriptors, so swapping a name for a link while we look
    /// redirects nothing. With `directories` false only regular files are swept: for a
    /// directory someone else owns (the database's). `keep` spares names the caller still
    /// needs (a temp manifest that can finish an interrupted publish: `Catalog.recover`).
    /// Best effort: what cannot be read or removed is left. Returns the names removed.
    @discardableResult
    public static func sweepTemps(in directory: String, directories: Bool = true, keep: (String) -> Bool = { _ in false }) -> [String] {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var removed: [String] = []
        for stale in staleTemps(in: fd, directories: directories, keep: keep) {
            if stale.isDirectory ? removeTree(stale.name, in: fd) : unlinkat(fd, stale.name, 0) == 0 { removed.append(stale.name) }
        }
        if !removed.isEmpty { _ = fsync(fd) }
        return removed
    }

    /// A temp file or directory that `sweepTemps` would remove, and the disk it holds.
    public struct StaleTemp: Sendable, Encodable, Equatable {
        public var name: String
        public var isDirectory: Bool
        public var bytes: Int64
    }

    /// What `sweepTemps` would remove from `directory` now, without removing anything.
    public static func staleTemps(in directory: String, directories: Bool = true, keep: (String) -> Bool = { _ in false }) -> [StaleTemp] {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        return staleTemps(in: fd, directories: directories, keep: keep)
    }

    private static func staleTemps(in fd: Int32, directories: Bool, keep: (String) -> Bool) -> [StaleTemp] {
        var found: [StaleTemp] = []
        for name in names(in: fd) where name.hasPrefix(tempPrefix) {
            guard let pid = creatorPid(of: name), isGone(pid), !keep(name) else { continue }
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_uid == geteuid() else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                found.append(StaleTemp(name: name, isDirectory: false, bytes: Int64(st.st_blocks) * 512))
            case S_IFDIR where directories:
                found.append(StaleTemp(name: name, isDirectory: true, bytes: treeBytes(name, in: fd)))
            default:
                continue
            }
        }
        return found
    }

    /// The disk the regular files under directory `name` hold, not following links.
    private static func treeBytes(_ name: String, in parent: Int32) -> Int64 {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var total: Int64 = 0
        for entry in names(in: fd) {
            var st = stat()
            guard fstatat(fd, entry, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFREG: total += Int64(st.st_blocks) * 512
            case S_IFDIR: total += treeBytes(entry, in: fd)
            default: continue
            }
        }
        return total
    }

    /// The pid field of a temp name; nil when the name is not `PREFIX PID-...` with a pid > 0.
    static func creatorPid(of name: String) -> pid_t? {
        guard name.hasPrefix(tempPrefix) else { return nil }
        let rest = name.dropFirst(tempPrefix.count)
        guard let dash = rest.firstIndex(of: "-"), rest[..<dash].allSatisfy({ ("0"..."9").contains($0) }),
              let pid = pid_t(rest[..<dash]), pid > 0 else { return nil }
        return pid
    }

    /// True when no process `pid` exists (EPERM means one does, someone else's).
    static func isGone(_ pid: pid_t) -> Bool {
        kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Removes a temp directory of this run (`TerminationCleanup`): its regular files and temp
    /// directories, then itself.
    static func removeTempDirectory(_ path: String) {
        let fd = open(Paths.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = removeTree(Paths.basename(path), in: fd)
    }

    /// Removes directory `name` in the directory open as `parent` when it is ours and holds
    /// only regular files and temp directories of ours (checked first, so nothing is removed
    /// from a directory that is left).
    private static func removeTree(_ name: String, in parent: Int32) -> Bool {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var own = stat()
        guard fstat(fd, &own) == 0, own.st_uid == geteuid() else { return false }
        var files: [String] = [], subdirectories: [String] = []
        for entry in names(in: fd) {
            var st = stat()
            guard fstatat(fd, entry, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return false }
            switch st.st_mode & S_IFMT {
            case S_IFREG: files.append(entry)
            case S_IFDIR where entry.hasPrefix(tempPrefix): subdirectories.append(entry)
            default: return false
            }
        }
        for entry in subdirectories { guard removeTree(entry, in: fd) else { return false } }
        for entry in files { _ = unlinkat(fd, entry, 0) }
        return unlinkat(parent, name, AT_REMOVEDIR) == 0
    }

    /// The names in the directory open as `fd`, without `.` and `..`; empty when unreadable.
    private static func names(in fd: Int32) -> [String] {
        let copy = dup(fd)
        guard copy >= 0 else { return [] }
        guard let dir = fdopendir(copy) else { close(copy); return [] }
        defer { closedir(dir) }
        rewinddir(dir)  // the copy shares the offset of `fd`
        return readNames(dir)
    }

    /// Every name an open directory stream lists, sorted, without `.` and `..`.
    private static func readNames(_ dir: OpaquePointer) -> [String] {
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The names in a directory, without `.` and `..`.
    public static func listDirectory(_ directory: String) throws -> [String] {
        guard let dir = opendir(directory) else {
            let error = Errno.current
            throw AbathurError(error.rawValue == ENOENT ? .usage : error.kind, directory, "cannot read directory: \(error)")
        }
        defer { closedir(dir) }
        return readNames(dir)
    }

    /// Creates `directory` with mode 0700 when it does not exist yet (not its parents). A
    /// symlink to a directory is accepted: the directory itself may live on another disk.
    public static func ensureDirectory(_ directory: String) throws {
        var st = stat()
        if stat(directory, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw AbathurError(.unsafePath, directory, "is not a directory") }
            return
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            let error = Errno.current
            throw AbathurError(error.kind, directory, "cannot create directory: \(error)")
        }
    }
}
