#if canImport(Glibc)
import Glibc
#endif

/// Temp file, fsync, rename, fsync the directory: how every file the tools write gets its
/// final name, so that nothing half-written ever carries one.
public enum SafeFiles {
    /// Every temp file starts with this, so the next run (under the lock) can sweep leftovers.
    public static let tempPrefix = ".abathur-tmp-"

    /// A fresh temp path in `directory`; `tag` says what it is, for whoever finds it.
    public static func tempPath(in directory: String, tag: String) -> String {
        let hex = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return Paths.join(directory, "\(tempPrefix)\(getpid())-\(hex)-\(tag)")
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
            throw AbathurError(error.exitCode, final, "cannot rename \(Paths.basename(temp)) into place: \(error)")
        }
        try syncDirectory(Paths.directory(of: final))
    }

    /// Gives `temp` a second, final name that must not exist yet (link(2) never replaces).
    /// The caller fsyncs the directory and removes the temp name.
    public static func link(_ temp: String, as final: String) throws {
        do {
            try Syscall.call(.rename) { Glibc.link(temp, final) }
        } catch {
            if error.rawValue == EEXIST { throw AbathurError(.refused, final, "already exists; not replacing it") }
            throw AbathurError(error.exitCode, final, "cannot link \(Paths.basename(temp)) into place: \(error)")
        }
    }

    /// Makes a rename or an unlink in `directory` durable.
    public static func syncDirectory(_ directory: String) throws {
        let fd: Int32
        do {
            fd = try Syscall.retrying { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        } catch {
            throw AbathurError(error.exitCode, directory, "cannot open directory: \(error)")
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
                throw AbathurError(error.exitCode, file.path, "cannot set mode \(String(mode, radix: 8)): \(error)")
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

    /// Temp directories tagged `tag` in `directory` whose creating process is gone (the pid
    /// is part of every temp name): what a killed run left where no lock guards the directory
    /// (`temp_dir`). Returns the names removed.
    public static func sweepOrphanedTempDirectories(in directory: String, tag: String) throws -> [String] {
        var removed: [String] = []
        for name in (try? listDirectory(directory)) ?? [] where name.hasPrefix(tempPrefix) && name.hasSuffix("-" + tag) {
            let fields = name.dropFirst(tempPrefix.count).split(separator: "-")
            guard let pid = fields.first.flatMap({ Int32($0) }), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let path = Paths.join(directory, name)
            guard try FileStatus.of(path)?.isDirectory == true else { continue }
            let inside = try listDirectory(path)
            guard try inside.allSatisfy({ try FileStatus.of(Paths.join(path, $0))?.isRegular == true }) else { continue }
            for file in inside { try remove(Paths.join(path, file)) }
            if rmdir(path) == 0 { removed.append(name) }
        }
        return removed
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
        do {
            try Syscall.call(.unlink) { unlink(path) }
        } catch {
            if error.rawValue == ENOENT { return }
            throw AbathurError(error.exitCode, path, "cannot remove: \(error)")
        }
    }

    /// Best-effort cleanup on an error path, where the first error is the one to report.
    public static func removeQuietly(_ path: String) {
        _ = unlink(path)
    }

    /// Removes the temp files a killed run left in `directory`: regular files, and temp
    /// directories holding only regular files, checked with `lstat`; a symlink that carries
    /// our prefix is not ours and is left alone.
    /// Call only under the directory's lock. Returns the names removed.
    /// With `directories` false, only regular files are swept: for a directory someone else
    /// owns (the database's), where a temp directory could be swapped for a link while we look.
    public static func sweepTemps(in directory: String, directories: Bool = true) throws -> [String] {
        var removed: [String] = []
        for name in try listDirectory(directory) where name.hasPrefix(tempPrefix) {
            let path = Paths.join(directory, name)
            guard let status = try FileStatus.of(path) else { continue }
            if status.isDirectory {
                guard directories else { continue }
                // A private copy directory (LiveReader): our regular files inside, then itself.
                let inside = try listDirectory(path)
                guard try inside.allSatisfy({ try FileStatus.of(Paths.join(path, $0))?.isRegular == true }) else { continue }
                for file in inside { try remove(Paths.join(path, file)) }
                guard rmdir(path) == 0 else { continue }
            } else {
                guard status.isRegular else { continue }
                try remove(path)
            }
            removed.append(name)
        }
        if !removed.isEmpty { try syncDirectory(directory) }
        return removed
    }

    /// The names in a directory, without `.` and `..`.
    public static func listDirectory(_ directory: String) throws -> [String] {
        guard let dir = opendir(directory) else {
            let error = Errno.current
            throw AbathurError(error.rawValue == ENOENT ? .usage : error.exitCode, directory, "cannot read directory: \(error)")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Creates `directory` with mode 0700 when it does not exist yet (not its parents). A
    /// symlink to a directory is accepted: the directory itself may live on another disk.
    public static func ensureDirectory(_ directory: String) throws {
        var st = stat()
        if stat(directory, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw AbathurError(.refused, directory, "is not a directory") }
            return
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            let error = Errno.current
            throw AbathurError(error.exitCode, directory, "cannot create directory: \(error)")
        }
    }

    /// Bytes available to an unprivileged writer on the filesystem holding `path`.
    public static func freeBytes(at path: String) throws -> Int64 {
        var info = statvfs()
        do {
            try Syscall.retrying { statvfs(path, &info) }
        } catch {
            throw AbathurError(error.exitCode, path, "cannot read free space: \(error)")
        }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}
