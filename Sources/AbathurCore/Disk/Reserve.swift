#if canImport(Glibc)
import Glibc
#endif

/// diskcheck's ballast file (`reserve = SIZE`): blocks allocated beside the database that a
/// full disk can get back at once. `abathur-diskcheck --fix` deletes it first, which gives
/// SQLite room to checkpoint; the next normal run creates it again once it fits.
///
/// `.DBNAME.abathur-reserve` in the database's directory, mode 0600. It is written as every
/// file of ours is (temp name, blocks allocated with `posix_fallocate`, fsync, rename, fsync
/// the directory), so a half-made reserve never carries the name, and it is verified by its
/// allocated blocks, not its length: a sparse file of the right length reserves nothing.
public struct Reserve: Sendable, Encodable, Equatable {
    public var path: String
    /// The configured size; nil when no reserve is configured.
    public var configuredBytes: Int64?
    /// What is there now: nil when absent.
    public var presentBytes: Int64?
    public var allocatedBytes: Int64?
    /// Present, a regular file, the configured size and fully allocated.
    public var verified: Bool

    public static func path(forDatabase database: String) -> String {
        Paths.join(Paths.directory(of: database), "." + Paths.basename(database) + ".abathur-reserve")
    }

    /// Looks at the reserve of `database` without changing anything.
    public static func look(database: String, configured: Int64?) throws -> Reserve {
        let path = path(forDatabase: database)
        var reserve = Reserve(path: path, configuredBytes: configured, presentBytes: nil, allocatedBytes: nil, verified: false)
        if let status = try FileStatus.of(path) {
            guard status.isRegular else {
                throw AbathurError(.unsafePath, path, "is not a regular file; a reserve is never a link or a directory: remove it by hand")
            }
            reserve.presentBytes = status.size
            reserve.allocatedBytes = status.allocatedBytes
            reserve.verified = configured.map { status.size == $0 && status.allocatedBytes >= $0 } ?? false
        }
        return reserve
    }

    /// Creates the reserve at its configured size (replacing one of another size or one not
    /// fully allocated). Throws `noSpace` when the filesystem cannot hold it; nothing is left.
    public static func create(database: String, bytes: Int64) throws {
        let final = path(forDatabase: database)
        let directory = Paths.directory(of: database)
        let file = try SafeFiles.createTemp(in: directory, tag: "reserve")
        do {
            let result = posix_fallocate(file.raw, 0, off_t(bytes))
            if result != 0 {
                let error = Errno(result)
                throw AbathurError(error.kind, directory, "cannot allocate a \(Bytes.describe(bytes)) reserve: \(error)")
            }
            try file.sync()
            try file.close()
            try SafeFiles.publish(file.path, as: final)
        } catch {
            SafeFiles.removeQuietly(file.path)
            throw error
        }
    }

    /// Deletes the reserve when it is there (a regular file of ours, checked with `lstat`);
    /// returns the bytes it held.
    @discardableResult
    public static func release(database: String) throws -> Int64 {
        let path = path(forDatabase: database)
        guard let status = try FileStatus.of(path) else { return 0 }
        guard status.isRegular else { throw AbathurError(.unsafePath, path, "is not a regular file; left alone") }
        try SafeFiles.remove(path)
        try SafeFiles.syncDirectory(Paths.directory(of: path))
        return status.allocatedBytes
    }
}

extension Reserve {
    /// What a normal run did about the reserve.
    public struct Upkeep: Sendable, Encodable {
        /// `none` (not configured, none there), `kept` (verified), `created`, `deleted` (no
        /// longer configured), `missing` (configured, could not be created: a warning).
        public var action: String
        public var detail: String
        public var reserve: Reserve

        public var isWarning: Bool { action == "missing" }
    }

    /// Keeps the reserve the settings ask for, under the database's lock (skipped, with a
    /// warning, while another run holds it): creates it when it is missing, of another size or
    /// not fully allocated, but only when the filesystem stays below the warning level with it;
    /// deletes one that is no longer configured.
    public static func upkeep(database: String, configured: Int64?, thresholds: DiskThresholds) throws -> Upkeep {
        var reserve = try look(database: database, configured: configured)
        if reserve.verified { return Upkeep(action: "kept", detail: "\(reserve.path): \(Bytes.describe(configured!)), allocated", reserve: reserve) }
        guard configured != nil || reserve.presentBytes != nil else {
            return Upkeep(action: "none", detail: "no reserve configured", reserve: reserve)
        }
        let lock: FileLock
        do {
            lock = try FileLock.acquire(FileLock.path(forDatabase: database), wait: 0)
        } catch let error as AbathurError where error.exitCode == .busy {
            return Upkeep(action: configured == nil ? "none" : "missing", detail: "\(reserve.path): not checked: another run holds the database's lock", reserve: reserve)
        }
        defer { lock.release() }
        guard let size = configured else {
            try release(database: database)
            return Upkeep(action: "deleted", detail: "\(reserve.path): reserve is not configured any more: deleted the ballast file", reserve: try look(database: database, configured: nil))
        }
        // The filesystem as it would be with the reserve at its size.
        var after = try Filesystem.of(Paths.directory(of: database))
        let adding = size - (reserve.allocatedBytes ?? 0)
        after.freeBytes -= adding
        after.freeBytesForRoot -= adding
        guard after.freeBytes >= SpaceBudget.margin, thresholds.level(after) == .ok else {
            let now = try Filesystem.of(Paths.directory(of: database))
            return Upkeep(action: "missing",
                          detail: "\(reserve.path): the \(Bytes.describe(size)) reserve is \(reserve.presentBytes == nil ? "missing" : "not the configured size") and was not created: with it the filesystem would be \(Percent.describe(after.usedPercent)) used with \(Bytes.describe(max(0, after.freeBytes))) free (now \(Percent.describe(now.usedPercent)), \(Bytes.describe(now.freeBytes))); it is created again when it fits below the warning level",
                          reserve: reserve)
        }
        let had = reserve.presentBytes != nil
        // A reserve of another size, or sparse, goes first: the new one takes its place.
        if had { try release(database: database) }
        try create(database: database, bytes: size)
        reserve = try look(database: database, configured: configured)
        return Upkeep(action: "created", detail: "\(reserve.path): \(had ? "recreated" : "created") the \(Bytes.describe(size)) reserve (space is there again)", reserve: reserve)
    }
}
