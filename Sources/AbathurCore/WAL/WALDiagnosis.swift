#if canImport(Glibc)
import Glibc
#endif

/// Everything `abathur-walfix inspect` reports about a database's `-wal`, read offline: the
/// WAL parsed frame by frame (never through SQLite, never written), the `-shm`, the processes
/// holding locks, and whether the committed prefix fits the database (`WALOverlay`, on a
/// scratch copy).
public struct WALDiagnosis: Sendable {
    public var database: String
    public var walPath: String
    /// Nil when there is no `-wal` (or it is empty): nothing waits for a checkpoint.
    public var wal: WALInspection?
    public var header: WALHeader? { wal?.header }
    public var overlay: WALOverlay?
    public var index: WALIndexFile?
    /// Locks on the `-shm` and the database, by process (this one excluded).
    public var locks: [HeldLock]
    /// Processes with the database or a companion open.
    public var openers: [Holder]
    /// Readers whose snapshot pins frames a checkpoint cannot copy yet.
    public var pinningReaders: [HeldLock]
    public var maxWALSize: Int64?

    /// One lock one process holds, named by what SQLite uses it for.
    public struct HeldLock: Sendable, Encodable, Equatable {
        public var pid: Int32
        public var command: String
        public var path: String
        public var slot: String
        public var exclusive: Bool
        /// For a read mark: the frame its snapshot ends at.
        public var mark: UInt32?
    }

    /// A checkpoint is starved when this many frames wait and a reader pins them (SQLite's
    /// default auto-checkpoint threshold).
    public static let starvationFrames: UInt32 = 1000

    public var walBytes: Int64 { wal?.fileSize ?? 0 }
    public var droppedPages: [UInt32] { Array(Set(wal?.dropped.flatMap(\.pages) ?? [])).sorted() }
    public var droppedTally: [(name: String, pages: Int)] { overlay?.tally(droppedPages) ?? [] }
    /// The break loses, or may lose, a commit. A break with no commit of this generation at or
    /// after it is an unfinished transaction (SQLite rewrites frames of an open transaction
    /// in place) or a torn write: harmless.
    public var isDamage: Bool {
        guard let wal else { return false }
        return wal.droppedCommits > 0 || wal.unverifiedCommits > 0
    }
    public var overMaxSize: Bool { maxWALSize.map { walBytes > $0 } ?? false }
    public var starved: Bool {
        guard let index, index.mxFrame > index.nBackfill, index.mxFrame - index.nBackfill >= WALDiagnosis.starvationFrames else { return false }
        return !pinningReaders.isEmpty
    }
    public var loses: Bool { (wal?.droppedCommits ?? 0) > 0 }
    public var doesNotFit: Bool { overlay?.fit == .breaks }

    public var exitCode: ExitCode {
        if loses || doesNotFit { return .corrupt }
        if overMaxSize || starved || overlay?.fit == .unchecked || (wal?.unverifiedCommits ?? 0) > 0 { return .warning }
        return .success
    }

    public var verdict: String {
        guard let wal else { return "healthy: no -wal, nothing waits for a checkpoint" }
        if loses { return "committed data would be lost: SQLite's recovery silently drops \(wal.droppedCommits) committed transaction(s); run 'abathur-walfix repair' (never delete the -wal)" }
        if doesNotFit { return "the WAL does not fit the database: a checkpoint would write it into the file; do not checkpoint, run 'abathur-walfix repair'" }
        var notes: [String] = []
        if wal.unverifiedCommits > 0 {
            notes.append("\(wal.unverifiedCommits) commit frame(s) at or after frame \(wal.firstInvalidFrame ?? 0) fail their checksum: a transaction lost to damage, or one whose commit never finished")
        }
        if overMaxSize { notes.append("the WAL is over --max-wal-size (\(Bytes.describe(maxWALSize!)))") }
        if starved { notes.append("checkpoints are starved by \(pinningReaders.map { "pid \($0.pid) (\($0.command))" }.joined(separator: ", "))") }
        if overlay?.fit == .unchecked { notes.append("whether the WAL fits the database was not checked") }
        if !notes.isEmpty { return "needs attention: " + notes.joined(separator: "; ") }
        return wal.committedFrames > 0 ? "healthy: \(wal.commits) committed transaction(s) wait for a checkpoint" : "healthy: nothing committed waits for a checkpoint"
    }

    /// Reads everything about `database`'s WAL; the scratch copy for the fit check goes to
    /// `tempDir`. Throws when the database is missing or the WAL cannot be read.
    public static func run(database: String, tempDir: String, maxWALSize: Int64?, busyTimeoutMs: Int) throws -> WALDiagnosis {
        guard let status = try FileStatus.of(database) else { throw AbathurError(.notFound, database, "no such file") }
        if status.isDirectory { throw AbathurError(.unsafePath, database, "is a directory, not a database") }
        // Empty, or not an SQLite file: exit 4, as in every tool (SPEC.md).
        _ = try DatabaseHeader.read(database, followSymlinks: true)
        let files = DatabaseFiles(database)
        var diagnosis = WALDiagnosis(database: database, walPath: files.wal, locks: [], openers: [], pinningReaders: [], maxWALSize: maxWALSize)
        if let walStatus = try FileStatus.of(files.wal) {
            guard walStatus.isRegular else { throw AbathurError(.unsafePath, files.wal, "not a regular file") }
            if walStatus.size > 0 {
                let wal = try WALInspection.inspectConfirmed(files.wal)
                diagnosis.wal = wal
                if wal.committedFrames > 0 || wal.droppedCommits > 0 {
                    diagnosis.overlay = WALOverlay.check(database: database, wal: wal, tempDir: tempDir, busyTimeoutMs: busyTimeoutMs)
                } else {
                    diagnosis.overlay = WALOverlay(fit: .nothingToCheck, detail: "no committed frame: nothing is laid over the database",
                                                   owners: [:], pageCount: 0)
                }
            }
        }
        diagnosis.index = try? WALIndexFile.read(files.shm)
        diagnosis.locks = heldLocks(files, index: diagnosis.index)
        diagnosis.openers = (try? Holders.openFiles(database)) ?? []
        if let index = diagnosis.index {
            diagnosis.pinningReaders = diagnosis.locks.filter { lock in
                guard let mark = lock.mark, mark != 0xffff_ffff else { return false }
                return mark < index.mxFrame
            }
        }
        return diagnosis
    }

    /// The locks other processes hold on the `-shm`'s slots and the database's lock bytes,
    /// from `/proc/locks` (nothing is opened).
    public static func heldLocks(_ files: DatabaseFiles, index: WALIndexFile?) -> [HeldLock] {
        let me = getpid()
        var held: [HeldLock] = []
        for entry in LockTable.locks(on: files.shm) where entry.pid != me && !entry.waiting {
            for offset in WALIndexFile.lockOffset...(WALIndexFile.lockOffset + 8) where entry.covers(offset) {
                let slot = offset - WALIndexFile.lockOffset
                // Read mark 0 is a reader of the main file alone: no frame may be copied into
                // it while that reader lives, so it pins the WAL from frame 0.
                let mark: UInt32? = slot == 3 ? 0 : (4...7).contains(slot) ? index?.readMarks[Int(slot - 3)] : nil
                held.append(HeldLock(pid: entry.pid, command: entry.pid > 0 ? Holders.command(of: entry.pid) : "?", path: files.shm,
                                     slot: WALIndexFile.slotName(offset), exclusive: entry.exclusive, mark: mark))
            }
        }
        for entry in LockTable.locks(on: files.main) where entry.pid != me && !entry.waiting && entry.covers(0x4000_0000 + 2) {
            held.append(HeldLock(pid: entry.pid, command: entry.pid > 0 ? Holders.command(of: entry.pid) : "?", path: files.main,
                                 slot: entry.exclusive ? "database write lock" : "database shared lock", exclusive: entry.exclusive, mark: nil))
        }
        return held
    }
}
