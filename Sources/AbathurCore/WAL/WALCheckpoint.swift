/// `abathur-walfix checkpoint`: SQLite's checkpoint in the chosen mode, with the busy
/// timeout, only after an offline look at the WAL says it is safe (a checkpoint makes SQLite's
/// recovery permanent: commits after a damaged frame are gone for good, and a WAL from another
/// generation is written into the file). Busy is never reported as success; the processes that
/// block it are named from `/proc` while the connection is open, never by opening the database
/// again (FACTS.md 14).
public enum WALCheckpoint {
    public enum Mode: String, Sendable, Encodable, CaseIterable {
        case passive, full, restart, truncate
    }

    public struct Outcome: Sendable, Encodable {
        public var mode: Mode
        /// As `PRAGMA wal_checkpoint` reports them: 1 when it could not finish.
        public var busy: Int64
        /// Frames in the WAL, and frames checkpointed into the database (-1: not in WAL mode).
        public var log: Int64
        public var checkpointed: Int64
        public var blockers: [WALDiagnosis.HeldLock]
        public var openers: [Holder]
        public var walBytesBefore: Int64
        public var walBytesAfter: Int64
        public var fit: WALOverlay.Fit?
        public var fitDetail: String?

        /// Not busy, and every frame of the WAL copied into the database.
        public var complete: Bool { busy == 0 && checkpointed >= log }
    }

    /// Checks the WAL offline, then checkpoints. Throws `walLoss` (exit 4) without opening the
    /// database with SQLite when commits would be dropped or the WAL does not fit it.
    public static func run(database: String, mode: Mode, tempDir: String, busyTimeoutMs: Int) throws -> Outcome {
        let diagnosis = try WALDiagnosis.run(database: database, tempDir: tempDir, maxWALSize: nil, busyTimeoutMs: busyTimeoutMs)
        let files = DatabaseFiles(database)
        if let wal = diagnosis.wal, let loss = wal.lossDescription {
            throw AbathurError(.walLoss, files.wal, "\(loss); a checkpoint would make that loss permanent, so none was run (see 'abathur-walfix inspect', then 'abathur-walfix repair')")
        }
        if diagnosis.doesNotFit {
            throw AbathurError(.walLoss, files.wal, "does not fit the database: \(diagnosis.overlay!.detail); no checkpoint was run (see 'abathur-walfix repair')")
        }
        if try FileStatus.of(files.wal) == nil {
            // Opening SQLite would only create an empty -wal and -shm.
            return Outcome(mode: mode, busy: 0, log: 0, checkpointed: 0, blockers: [], openers: [], walBytesBefore: 0, walBytesAfter: 0,
                           fit: nil, fitDetail: "no -wal: nothing to checkpoint")
        }
        var outcome = Outcome(mode: mode, busy: 0, log: 0, checkpointed: 0, blockers: [], openers: [],
                              walBytesBefore: try FileStatus.of(files.wal)?.size ?? 0, walBytesAfter: 0,
                              fit: diagnosis.overlay?.fit, fitDetail: diagnosis.overlay?.detail)
        do {
            let connection = try Connection(path: database, mode: .readWrite, busyTimeoutMs: busyTimeoutMs)
            // The checkpoint does what the mode says; closing must not add a second one.
            try connection.keepWALOnClose()
            let row = try connection.rows("PRAGMA wal_checkpoint(\(mode.rawValue.uppercased()))").first ?? []
            let numbers = row.map { $0.flatMap { Int64($0) } ?? 0 }
            guard numbers.count == 3 else { throw AbathurError(.internal, database, "PRAGMA wal_checkpoint returned \(row)") }
            (outcome.busy, outcome.log, outcome.checkpointed) = (numbers[0], numbers[1], numbers[2])
            if !outcome.complete {
                // Still connected: the blockers are read from /proc; nothing is opened, not even
                // the -shm (closing it would drop this connection's locks on it).
                outcome.blockers = WALDiagnosis.heldLocks(files, index: nil)
                outcome.openers = (try? Holders.openFiles(database)) ?? []
            }
        } catch let error as SQLiteError {
            throw AbathurError(error.kind, database, "checkpoint failed: \(error.message)")
        }
        outcome.walBytesAfter = try FileStatus.of(files.wal)?.size ?? 0
        return outcome
    }
}
