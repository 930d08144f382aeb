#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on a lock file, held until `release()` or `deinit`.
///
/// flock locks belong to the open file description, not to the process, so they do not
/// interfere with SQLite's POSIX locks (FACTS.md 14 is about fcntl locks).
public final class FileLock {
    public let path: String
    private var descriptor: FileDescriptor?

    private init(path: String, descriptor: FileDescriptor) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock at `path`. With `wait` nil or 0 a held lock fails at once with exit 5;
    /// otherwise it retries for up to `wait` seconds.
    public static func acquire(_ path: String, wait: Double?) throws -> FileLock {
        if let status = try FileStatus.of(path), !status.isRegular {
            throw AbathurError(.unsafePath, path, "lock file is not a regular file")
        }
        let fd: Int32
        do {
            fd = try Syscall.retrying { open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600)) }
        } catch {
            throw AbathurError(error.kind, path, "cannot open lock file: \(error)")
        }
        let owned = FileDescriptor(raw: fd, path: path)
        let deadline = Clock.monotonicSeconds() + (wait ?? 0)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = Errno.current
            if error.rawValue == EINTR { continue }
            guard error.rawValue == EWOULDBLOCK else {
                throw AbathurError(error.kind, path, "cannot lock: \(error)")
            }
            if Clock.monotonicSeconds() >= deadline {
                let hint = (wait ?? 0) > 0 ? "still locked after \(Int(wait!))s" : "locked by another instance (use --wait SECONDS to wait)"
                throw AbathurError(.locked, path, hint)
            }
            Clock.sleep(seconds: 0.05)
        }
        return FileLock(path: path, descriptor: owned)
    }

    /// A reader's lock on the directory `path` is in: taken as `acquire` takes it when the
    /// directory is writable; nil when it is read-only (a DR share mounted read-only, or a
    /// directory this user may not write), where a reader needs no lock and writes nothing.
    public static func acquireUnlessReadOnly(_ path: String, wait: Double?) throws -> FileLock? {
        if readOnlyReason(Paths.directory(of: path)) != nil { return nil }
        return try acquire(path, wait: wait)
    }

    /// Why nothing can be created in `directory`: its filesystem is mounted read-only
    /// (`ST_RDONLY`, `EROFS`), or this user may not write it (`EACCES`, with the effective
    /// ids); nil when it is writable. A missing directory is judged by its parent, where it
    /// would be created.
    public static func readOnlyReason(_ directory: String) -> String? {
        let existing = Filesystem.existingAncestor(of: directory)
        if (try? Filesystem.of(existing))?.readOnly == true { return "\(existing) is on a read-only filesystem" }
        if faccessat(AT_FDCWD, existing, W_OK, AT_EACCESS) != 0 {
            let error = Errno.current
            if error.rawValue == EROFS { return "\(existing) is on a read-only filesystem" }
            if error.rawValue == EACCES { return "\(existing) is not writable by this user (uid \(geteuid()))" }
        }
        return nil
    }

    /// The lock that serialises tools that write `database`: `.NAME.abathur-lock` beside it.
    public static func path(forDatabase database: String) -> String {
        Paths.join(Paths.directory(of: database), "." + Paths.basename(database) + ".abathur-lock")
    }

    public func release() {
        descriptor = nil
    }
}

extension FileLock {
    /// The backup directory's lock, then the database's: what a run holds that changes the
    /// database or writes into the backup directory (SPEC.md, one lock per backup directory
    /// and database). A read-only backup directory (a DR share) is refused with `readOnly`
    /// as the reason, or, when `readOnly` is nil, left unlocked: only the database is locked.
    /// Returns the locks (released when dropped) and whether the backup directory was
    /// read-only.
    public static func backupDirectoryAndDatabase(_ backupDir: String, _ database: String, wait: Double?,
                                                  refusingReadOnly readOnly: String?) throws -> (locks: [FileLock], readOnly: Bool) {
        var locks: [FileLock] = []
        let isReadOnly = readOnlyReason(backupDir) != nil
        if isReadOnly, let readOnly { throw AbathurError(.refused, backupDir, "read-only: \(readOnly); nothing was changed") }
        if !isReadOnly {
            try SafeFiles.ensureDirectory(backupDir)
            locks.append(try acquire(Paths.join(backupDir, Catalog.lockName), wait: wait))
        }
        locks.append(try acquire(path(forDatabase: database), wait: wait))
        return (locks, isReadOnly)
    }
}
