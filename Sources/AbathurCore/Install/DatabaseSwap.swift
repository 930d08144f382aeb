#if canImport(Glibc)
import Glibc
#endif

/// Puts a checked candidate in the database's place so that, after a crash at any point, the
/// database path holds either the old database or the new one: never a mix, and never the new
/// database with the old WAL (FACTS.md 8: a stale `-wal` is replayed onto whatever file has
/// the name).
///
/// The order, and why:
/// 1. **Settle the old database**: open it with SQLite, read (a hot `-journal` is rolled
///    back), `PRAGMA wal_checkpoint(TRUNCATE)`, close; the last connection's close deletes
///    the `-wal` and `-shm`. This is what the service's own clean shutdown does and is the
///    only safe way to retire a WAL (FACTS.md 7). SQLite's checkpoint is crash-safe, so a
///    crash here leaves the old database, with or without its WAL. The raw files are already
///    in the safety copy (FACTS.md 11).
/// 2. **Move aside** whatever `-wal`, `-shm`, `-journal` is left (renamed into
///    `.abathur-aside-STAMP/` in the database's directory; never deleted), fsync. After a
///    settle these are empty or gone, so the old database alone is still the old database.
///    If SQLite cannot read it at all (not a database, page 1 damaged), the old file stays
///    what it was. If SQLite read it but could not checkpoint it, nothing moves (`settle`).
/// 3. **rename(2) the candidate over the database**, fsync the directory. Atomic: the name
///    points at the old file or the new one. The new one has no `-wal` beside it.
///
/// A rerun after a crash starts again from the top: the old (or already new) database is
/// safety-copied, settled and replaced; the killed run's candidate is a temp file that the
/// rerun sweeps.
public enum DatabaseSwap {
    public struct Report: Sendable, Encodable {
        public var settled: String
        public var movedAside: [String]
        public var asideDirectory: String?
    }

    /// How the old database's `-wal` is retired.
    public enum Retirement: Sendable {
        /// Settled by SQLite first (a restore): the moved-aside companions are empty.
        case settle
        /// Never opened by SQLite, never checkpointed into the live file (walfix's repair,
        /// whose `-wal` is damaged): kept as it is in the aside directory, and replaced
        /// through a bridge (`BridgeWAL`), so that at every moment the database's name and its
        /// `-wal` read as the old database or as the candidate, never as a mix:
        /// 1. the old `-wal`, `-shm` and `-journal` are hard-linked into the aside directory
        ///    (their bytes are kept from here on; the live names still read as before);
        /// 2. the bridge, a WAL that turns the old main file into the candidate, is written
        ///    beside the database; the live `-shm` name goes (SQLite rebuilds it);
        /// 3. the bridge is renamed over the `-wal`: old main file + bridge = the candidate;
        /// 4. the candidate is renamed over the database: candidate + bridge = the candidate;
        /// 5. the bridge goes: the candidate alone.
        case bridge
    }

    public static func install(_ candidate: String, over database: String, busyTimeoutMs: Int,
                               retiring retirement: Retirement = .settle) throws -> Report {
        try takeOwnership(candidate, from: database)
        switch retirement {
        case .settle:
            let settled = try settle(database, busyTimeoutMs: busyTimeoutMs)
            let (aside, moved) = try moveAside(database, files: DatabaseFiles.File.companions)
            try SafeFiles.publish(candidate, as: database)
            return Report(settled: settled, movedAside: moved, asideDirectory: aside)
        case .bridge:
            return try bridge(candidate, over: database)
        }
    }

    /// `Retirement.bridge`, step by step.
    static func bridge(_ candidate: String, over database: String) throws -> Report {
        let live = DatabaseFiles(database)
        let directory = Paths.directory(of: database)
        let present = try live.existing([.wal, .shm, .journal])
        var aside: String?
        var kept: [String] = []
        for file in present {
            let into = try aside ?? makeAsideDirectory(in: directory)
            aside = into
            let target = Paths.join(into, Paths.basename(live.path(file)))
            try SafeFiles.link(live.path(file), as: target)
            kept.append(target)
        }
        if let aside { try SafeFiles.syncDirectory(aside) }
        let bridge = SafeFiles.tempPath(in: directory, tag: "bridge-wal")
        let frames = try BridgeWAL.write(from: database, to: candidate, as: bridge)
        try takeOwnership(bridge, from: database)
        for file in [DatabaseFiles.File.shm, .journal] where present.contains(file) { try unlinkName(live.path(file)) }
        try SafeFiles.publish(bridge, as: live.wal)
        try SafeFiles.publish(candidate, as: database)
        try unlinkName(live.wal)
        try SafeFiles.syncDirectory(directory)
        return Report(settled: "not settled: the old -wal was kept as it was (never checkpointed into the live file) and replaced through a \(frames)-frame bridge WAL",
                      movedAside: kept, asideDirectory: aside)
    }

    /// Removes a name whose bytes are kept elsewhere (a hard link in the aside directory, or a
    /// bridge of ours).
    static func unlinkName(_ path: String) throws {
        do {
            try Syscall.call(.unlink) { unlink(path) }
        } catch {
            throw AbathurError(error.kind, path, "cannot remove: \(error)")
        }
    }

    /// Settles `database` and moves it and its companions aside: what is left of a database
    /// when there is nothing to put in its place. Returns the aside directory.
    public static func moveAside(_ database: String, busyTimeoutMs: Int = 5000) throws -> String {
        _ = try settle(database, busyTimeoutMs: busyTimeoutMs)
        return try moveAside(database, files: DatabaseFiles.File.allCases).directory ?? "(nothing to move)"
    }

    /// Renames each existing `database + suffix` into a new `.abathur-aside-STAMP/` beside
    /// it, then fsyncs both directories.
    static func moveAside(_ database: String, files: [DatabaseFiles.File]) throws -> (directory: String?, moved: [String]) {
        let directory = Paths.directory(of: database)
        var aside: String?
        var moved: [String] = []
        for path in try DatabaseFiles(database).existing(files).map(DatabaseFiles(database).path) {
            let into = try aside ?? makeAsideDirectory(in: directory)
            aside = into
            let target = Paths.join(into, Paths.basename(path))
            do {
                try Syscall.call(.rename) { rename(path, target) }
            } catch {
                throw AbathurError(error.kind, path, "cannot move aside into \(into): \(error)")
            }
            moved.append(target)
        }
        if let aside {
            try SafeFiles.syncDirectory(aside)
            try SafeFiles.syncDirectory(directory)
        }
        return (aside, moved)
    }

    /// Step 1: the old database's WAL (or hot journal) folded into it, the way SQLite does on
    /// a clean close. Returns what happened.
    ///
    /// When SQLite cannot read the database at all (not a database, page 1 damaged), there is
    /// nothing SQLite could fold into it: its files are moved aside as they are. When SQLite
    /// opened it but rolling back or checkpointing failed (I/O error, disk full, another
    /// holder), this throws: the old database may then be whole only together with its `-wal`,
    /// so nothing may be moved aside.
    public static func settle(_ database: String, busyTimeoutMs: Int) throws -> String {
        guard try FileStatus.of(database) != nil else { return "no database to settle" }
        let files = DatabaseFiles(database)
        let present = try files.existing(DatabaseFiles.File.transactions)
        guard !present.isEmpty else { return "no -wal or -journal: nothing to settle" }
        let hasWAL = present.contains(.wal)
        // What the WAL holds, read raw before SQLite opens the database (FACTS.md 14).
        let wal = hasWAL ? try? WALInspection.inspect(files.wal) : nil
        let connection: Connection
        do {
            connection = try Connection(path: database, mode: .readWrite, busyTimeoutMs: busyTimeoutMs)
            // Reads page 1 only (no schema): rolls back a hot journal, recovers the WAL index.
            _ = try connection.integer("PRAGMA schema_version")
        } catch {
            if error.kind == .busy { throw AbathurError(.busy, database, "cannot settle the old database: \(error.message)") }
            if error.code.primary == .notADatabase || error.code.primary == .corrupt {
                return "SQLite cannot read the old database (\(error.message)): its files are moved aside as they are"
            }
            throw AbathurError(error.kind, database, "cannot settle the old database (\(error.message)); nothing was moved")
        }
        do {
            guard try connection.checkpointTruncate() else {
                throw AbathurError(.busy, database, "checkpointing the old database was blocked by another connection; nothing was moved")
            }
        } catch let error as SQLiteError {
            throw AbathurError(error.kind, database, "checkpointing the old database failed (\(error.message)); it is whole with its -wal, nothing was moved")
        }
        guard hasWAL else { return "rolled back its hot journal" }
        guard let wal else { return "checkpointed its WAL into it" }
        var detail = "checkpointed its WAL (\(wal.commits) committed transaction(s), \(wal.committedFrames) frame(s)) into it"
        if wal.droppedCommits > 0 {
            detail += "; \(wal.droppedCommits) later commit(s) after a damaged frame were not applied (SQLite drops them; the raw -wal is in the safety copy)"
        }
        return detail
    }

    /// The new file gets the old one's owner, group and mode (the service runs as its own
    /// user); with no old file, the directory's owner and group, mode 0600. Done through a
    /// descriptor opened without following links: the directory may belong to the service.
    static func takeOwnership(_ candidate: String, from database: String) throws {
        var reference = stat()
        let fromFile = stat(database, &reference) == 0
        if !fromFile {
            guard stat(Paths.directory(of: database), &reference) == 0 else {
                throw AbathurError(Errno.current.kind, Paths.directory(of: database), "cannot stat: \(Errno.current)")
            }
        }
        let file = try FileDescriptor.openForReading(candidate)
        guard try file.status().isRegular else { throw AbathurError(.unsafePath, candidate, "not a regular file") }
        let mode = fromFile ? reference.st_mode & 0o7777 : 0o600
        guard fchown(file.raw, reference.st_uid, reference.st_gid) == 0, fchmod(file.raw, mode) == 0 else {
            throw AbathurError(Errno.current.kind, candidate, "cannot set owner and mode: \(Errno.current)")
        }
        try file.close()
    }

    /// The aside directories' names begin with this (retention finds them by it).
    public static let asidePrefix = ".abathur-aside-"

    static func makeAsideDirectory(in directory: String) throws -> String {
        var path = Paths.join(directory, asidePrefix + Clock.fileStamp(Int64(Clock.now())))
        var n = 2
        while mkdir(path, 0o700) != 0 {
            guard errno == EEXIST else { throw AbathurError(Errno.current.kind, path, "cannot create directory: \(Errno.current)") }
            path = Paths.join(directory, asidePrefix + Clock.fileStamp(Int64(Clock.now())) + "_\(n)")
            n += 1
        }
        return path
    }
}
