/// What SQLite's recovery makes of a `-wal` file, summed up over `WALReader`'s frames
/// (FACTS.md, "WAL file"): what is committed, where the valid prefix ends and why, which
/// commits after that point SQLite would silently drop (FACTS.md 10), and the pages each
/// commit wrote.
public struct WALInspection: Sendable, Equatable {
    /// One transaction in the WAL: its frames up to and including its commit frame.
    public struct Commit: Sendable, Equatable {
        /// 1-based index of its first frame and of its commit frame.
        public var firstFrame: Int
        public var commitFrame: Int
        /// The database size in pages after it.
        public var databasePages: UInt32
        /// The distinct pages it wrote, ascending.
        public var pages: [UInt32]
    }

    /// The header as read; nil when the file is empty, shorter than a header, or has a bad magic.
    public var header: WALHeader?
    /// Why the whole WAL is ignored, when it is.
    public var headerProblem: String?
    public var fileSize: Int64
    public var pageSize: Int
    public var checkpointSequence: UInt32
    public var salt1: UInt32
    public var salt2: UInt32
    /// Whole frames in the file (the last may be torn off).
    public var framesInFile: Int
    /// Frames before the first invalid one.
    public var validFrames: Int
    /// Frames up to and including the last commit frame in the valid prefix: what SQLite uses.
    public var committedFrames: Int
    /// The transactions of the committed prefix, in order.
    public var committed: [Commit]
    /// 1-based index of the first invalid frame, and why; nil when every frame is valid.
    public var firstInvalidFrame: Int?
    public var invalidBreak: WALFrame.Break?
    /// Commits after the break that still carry the current salts and verify as a chain
    /// seeded from the broken frame's stored checksum: committed transactions SQLite will
    /// drop on recovery.
    public var dropped: [Commit]
    /// Frames after the break that verify (commit frames or not).
    public var droppedFrames: Int
    /// Commit frames of this generation at or after the break that do not verify: a
    /// transaction that may have been committed and is lost, or one whose commit never
    /// finished (a crash while it was written). Not counted in `dropped`.
    public var unverifiedCommits: Int = 0
    /// Bytes after the last whole frame (a torn tail).
    public var trailingBytes: Int64

    public var commits: Int { committed.count }
    public var droppedCommits: Int { dropped.count }
    /// The database size in pages after the last valid commit.
    public var committedDatabasePages: UInt32 { committed.last?.databasePages ?? 0 }
    /// Valid frames after the last commit: a transaction that never committed.
    public var uncommittedFrames: Int { validFrames - committedFrames }
    /// Distinct pages written by the committed prefix.
    public var pagesTouched: Int { Set(committed.flatMap(\.pages)).count }
    public var invalidReason: String? { invalidBreak?.description }

    /// The WAL holds commits that a clean checkpoint has not yet copied into the database.
    public var hasCommittedFrames: Bool { headerProblem == nil && committedFrames > 0 }

    /// Reads and checks the WAL at `path`, one frame in memory at a time. The file is opened
    /// read-only and closed again; nothing is written. Throws only when it cannot be read at all.
    public static func inspect(_ path: String) throws -> WALInspection {
        let reader = try WALReader(path)
        let header = reader.header
        var result = WALInspection(header: header, headerProblem: reader.headerProblem?.description, fileSize: reader.fileSize,
                                   pageSize: header?.framesAreReadable == true ? header!.pageSize : 0,
                                   checkpointSequence: header?.checkpointSequence ?? 0, salt1: header?.salt1 ?? 0, salt2: header?.salt2 ?? 0,
                                   framesInFile: reader.framesInFile, validFrames: 0, committedFrames: 0, committed: [],
                                   firstInvalidFrame: nil, invalidBreak: nil, dropped: [], droppedFrames: 0,
                                   trailingBytes: reader.trailingBytes)
        // The frames since the last commit (of the valid prefix, then of the chain past the break).
        var pending: (first: Int, pages: Set<UInt32>)?
        while let frame = try reader.next() {
            switch frame.standing {
            case .valid:
                result.validFrames = frame.index
            case .firstInvalid(let reason):
                result.firstInvalidFrame = frame.index
                result.invalidBreak = reason
                if frame.saltsMatch && frame.isCommit { result.unverifiedCommits += 1 }
                pending = nil
                continue
            case .pastBreak:
                // Only intact frames of this generation count: not random bytes that happen to
                // carry the salts, nor an earlier generation's frames.
                guard frame.saltsMatch, frame.pageNumber != 0, frame.checksumVerifies else {
                    if frame.saltsMatch && frame.isCommit { result.unverifiedCommits += 1 }
                    continue
                }
                result.droppedFrames += 1
            }
            pending = (pending?.first ?? frame.index, (pending?.pages ?? []).union([frame.pageNumber]))
            guard frame.isCommit, let transaction = pending else { continue }
            let commit = Commit(firstFrame: transaction.first, commitFrame: frame.index, databasePages: frame.commitSize,
                                pages: transaction.pages.sorted())
            pending = nil
            if frame.standing == .valid {
                result.committed.append(commit)
                result.committedFrames = frame.index
            } else {
                result.dropped.append(commit)
            }
        }
        try reader.close()
        return result
    }

    /// `inspect` for a WAL that a live writer may be appending to. A frame read while it is
    /// being written looks broken, and a commit written right after it looks dropped; real
    /// damage stays where it is. So a finding of dropped commits counts only when it reads
    /// the same (same salts, same first invalid frame) three times over 100 ms.
    public static func inspectConfirmed(_ path: String) throws -> WALInspection {
        try confirmed(reading: { try inspect(path) }, pause: { Clock.sleep(seconds: 0.05) })
    }

    /// The rule of `inspectConfirmed` over successive reads: a finding of dropped commits
    /// stands only when three reads in a row agree on it. A break that keeps moving (ten reads,
    /// never three alike) is a writer outrunning the reader, not damage: the last read is
    /// returned without the commits it seemed to drop.
    static func confirmed(reading read: () throws -> WALInspection, pause: () -> Void) rethrows -> WALInspection {
        var result = try read()
        var agreeing = 1
        var reads = 1
        while result.droppedCommits > 0 && agreeing < 3 {
            guard reads < 10 else {
                result.dropped = []
                result.droppedFrames = 0
                return result
            }
            pause()
            let again = try read()
            reads += 1
            if again.droppedCommits == 0 { return again }
            let same = again.salt1 == result.salt1 && again.salt2 == result.salt2
                && again.firstInvalidFrame == result.firstInvalidFrame && again.headerProblem == result.headerProblem
            agreeing = same ? agreeing + 1 : 1
            result = again
        }
        return result
    }

    /// What SQLite's recovery silently drops, in one sentence for a diagnostic; nil when
    /// nothing committed is lost.
    public var lossDescription: String? {
        guard droppedCommits > 0 else { return nil }
        if let headerProblem {
            return "SQLite ignores this WAL (\(headerProblem)), yet \(droppedCommits) committed transaction(s) in it carry its salts and are silently dropped"
        }
        return "\(droppedCommits) committed transaction(s) (\(droppedFrames) frames) after invalid frame \(firstInvalidFrame ?? 0) (\(invalidReason ?? "?")) are silently dropped by SQLite"
    }
}
