#if canImport(Glibc)
import Glibc
#endif

/// The database, `-wal`, `-shm` and `-journal` exactly as they were (raw bytes, even when
/// corrupt), copied (or, for a main file about to be renamed over, hard-linked) into a timestamped directory beside the backups (or, when they are on a
/// read-only share, beside the database) before anything replaces
/// them. Written under a temp name and renamed when complete and fsynced, so a directory with
/// a final name always holds a whole copy.
public struct SafetyCopy: Sendable, Encodable {
    public struct File: Sendable, Encodable {
        public var name: String
        public var bytes: Int64
        public var sha256: String
    }

    public var directory: String
    /// The database's file name; the companions add their suffix to it.
    public var databaseName: String
    public var files: [File]

    /// The safety root beside the database, used when the backup directory is read-only.
    public static let besideDatabaseDirName = ".abathur-safety"

    /// Bytes a safety copy of `database` needs now.
    public static func size(of database: String) throws -> Int64 {
        try DatabaseFiles(database).size()
    }

    /// Copies what exists of `database` and its companions into `root/STAMP-TAG`; nil when
    /// none of them exists. Call under the backup directory's lock.
    ///
    /// `replacedByRename`: the caller proved that nothing holds the database and will replace
    /// it by renaming another file over its name, never writing it. Then, when it has no
    /// `-wal` and no `-journal` (nothing will checkpoint into it either), its main file's
    /// safety copy is a hard link to it: the same bytes, which nothing writes any more, at
    /// no cost in time or space (copying and fsyncing 1 GiB took 5 s of a 16 s restore).
    /// Across filesystems it is copied, as always.
    public static func make(of database: String, into root: String, tag: String, replacedByRename: Bool = false) throws -> SafetyCopy? {
        let live = DatabaseFiles(database)
        let present = try live.existing()
        guard !present.isEmpty else { return nil }
        try SafeFiles.ensureDirectory(root)
        SafeFiles.sweepTemps(in: root)
        let temp = SafeFiles.tempPath(in: root, tag: "safety")
        guard mkdir(temp, 0o700) == 0 else { throw AbathurError(Errno.current.kind, temp, "cannot create directory: \(Errno.current)") }
        var files: [File] = []
        do {
            var linked = false
            if replacedByRename, present.contains(.main), !present.contains(.wal), !present.contains(.journal) {
                let name = Paths.basename(database)
                if try SafeFiles.hardLink(database, toNew: Paths.join(temp, name)) {
                    // Whatever the service left unsynced is made durable before it counts.
                    try SafeFiles.syncFile(Paths.join(temp, name))
                    let (sha256, bytes) = try GzipFile.sha256(of: Paths.join(temp, name))
                    files.append(File(name: name, bytes: bytes, sha256: sha256))
                    linked = true
                }
            }
            let copied = present.filter { !(linked && $0 == .main) }
            try SpaceBudget.of(root, headroom: .allFree).require(try live.size(of: copied), for: "the safety copy of \(database)")
            for file in copied {
                let name = Paths.basename(live.path(file))
                // The live database may be a file the service reaches through a symlink; its
                // companions never are.
                let (sha256, bytes) = try SafeFiles.copy(live.path(file), toNew: Paths.join(temp, name),
                                                         followSymlinks: file == .main, sync: true)
                files.append(File(name: name, bytes: bytes, sha256: sha256))
            }
            try SafeFiles.syncDirectory(temp)
            var final = Paths.join(root, "\(Clock.fileStamp(Int64(Clock.now())))-\(tag)")
            var n = 2
            while try FileStatus.of(final) != nil {
                final = Paths.join(root, "\(Clock.fileStamp(Int64(Clock.now())))-\(tag)_\(n)")
                n += 1
            }
            try SafeFiles.publish(temp, as: final)
            return SafetyCopy(directory: final, databaseName: Paths.basename(database), files: files)
        } catch {
            for file in files { SafeFiles.removeQuietly(Paths.join(temp, file.name)) }
            for file in present { SafeFiles.removeQuietly(Paths.join(temp, Paths.basename(live.path(file)))) }
            rmdir(temp)
            throw error
        }
    }

    /// The copy of the database or of one companion, if it was there.
    public func path(of file: DatabaseFiles.File) -> String? {
        files.first { $0.name == databaseName + file.suffix }.map { Paths.join(directory, $0.name) }
    }
}

extension Clock {
    /// `2026-11-27_13-00-00`: sorts by time, safe in a file name.
    public static func fileStamp(_ seconds: Int64) -> String {
        let t = utc(seconds)
        return "\(pad(t.year, 4))-\(pad(t.month))-\(pad(t.day))_\(pad(t.hour))-\(pad(t.minute))-\(pad(t.second))"
    }
}
