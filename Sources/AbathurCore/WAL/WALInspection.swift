/// The `-wal` file read offline, frame by frame, the way SQLite's recovery reads it
/// (FACTS.md, "WAL file"): what is committed, where the valid prefix ends and why, and which
/// commits after that point SQLite would silently drop (FACTS.md 10).
public struct WALInspection: Sendable, Equatable {
    public static let magicLittleEndian: UInt32 = 0x377f_0682
    public static let magicBigEndian: UInt32 = 0x377f_0683
    static let headerSize = 32
    static let frameHeaderSize = 24

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
    public var commits: Int
    /// The database size in pages after the last valid commit.
    public var committedDatabasePages: UInt32
    /// 1-based index of the first invalid frame, and why; nil when every frame is valid.
    public var firstInvalidFrame: Int?
    public var invalidReason: String?
    /// Commit frames after the break that still carry the current salts: committed
    /// transactions SQLite will drop on recovery.
    public var droppedCommits: Int
    public var droppedFrames: Int
    /// Distinct pages written by the committed prefix.
    public var pagesTouched: Int
    /// Bytes after the last whole frame (a torn tail).
    public var trailingBytes: Int64

    /// The WAL holds commits that a clean checkpoint has not yet copied into the database.
    public var hasCommittedFrames: Bool { headerProblem == nil && committedFrames > 0 }

    /// Reads and checks the WAL at `path`. The file is opened read-only and closed again;
    /// nothing is written. Throws only when it cannot be read at all.
    public static func inspect(_ path: String) throws -> WALInspection {
        let file = try FileDescriptor.openForReading(path)
        let size = try file.status().size
        var result = WALInspection(headerProblem: nil, fileSize: size, pageSize: 0, checkpointSequence: 0, salt1: 0, salt2: 0,
                                   framesInFile: 0, validFrames: 0, committedFrames: 0, commits: 0, committedDatabasePages: 0,
                                   firstInvalidFrame: nil, invalidReason: nil, droppedCommits: 0, droppedFrames: 0,
                                   pagesTouched: 0, trailingBytes: 0)
        var header = [UInt8](repeating: 0, count: headerSize)
        let got = try header.withUnsafeMutableBytes { try file.readFully(into: $0) }
        guard got == headerSize else {
            result.headerProblem = size == 0 ? "empty WAL (nothing to replay)" : "WAL shorter than its 32-byte header"
            return result
        }
        let magic = bigEndian(header, 0)
        guard magic == magicLittleEndian || magic == magicBigEndian else {
            result.headerProblem = "bad WAL magic 0x\(String(magic, radix: 16))"
            return result
        }
        let littleEndian = magic == magicLittleEndian
        let version = bigEndian(header, 4)
        let pageSize = Int(bigEndian(header, 8))
        result.checkpointSequence = bigEndian(header, 12)
        result.salt1 = bigEndian(header, 16)
        result.salt2 = bigEndian(header, 20)
        guard version == 3_007_000 else {
            result.headerProblem = "unknown WAL format version \(version)"
            return result
        }
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            result.headerProblem = "invalid WAL page size \(pageSize)"
            return result
        }
        result.pageSize = pageSize
        var sum = checksum(header, 0..<24, littleEndian: littleEndian, start: (0, 0))
        let frameSize = frameHeaderSize + pageSize
        result.framesInFile = Int((size - Int64(headerSize)) / Int64(frameSize))
        result.trailingBytes = (size - Int64(headerSize)) % Int64(frameSize)
        var frame = [UInt8](repeating: 0, count: frameSize)
        var pages: Set<UInt32> = []
        var pendingPages: Set<UInt32> = []
        // With a damaged header SQLite ignores every frame: all commits that carry the
        // header's salts are then dropped, and are counted below as past the break.
        var broken = false
        // Past the break, frames are counted as dropped only when they verify as a chain
        // seeded from the last broken frame's stored checksum (or the header's): intact
        // frames that SQLite will never read, not random bytes that happen to carry the salts.
        var chain = (bigEndian(header, 24), bigEndian(header, 28))
        if sum.0 != chain.0 || sum.1 != chain.1 {
            result.headerProblem = "WAL header checksum mismatch: SQLite ignores this WAL"
            broken = true
        }
        for index in 1...max(1, result.framesInFile) where result.framesInFile > 0 {
            let n = try frame.withUnsafeMutableBytes { try file.readFully(into: $0) }
            guard n == frameSize else { break }
            let pageNumber = bigEndian(frame, 0)
            let commitSize = bigEndian(frame, 4)
            let saltsMatch = bigEndian(frame, 8) == result.salt1 && bigEndian(frame, 12) == result.salt2
            if broken {
                // Past the break: count commits that still belong to this WAL generation.
                guard saltsMatch else { continue }
                let stored = (bigEndian(frame, 16), bigEndian(frame, 20))
                let next = checksum(frame, 0..<8, littleEndian: littleEndian, start: chain)
                let full = checksum(frame, frameHeaderSize..<frameSize, littleEndian: littleEndian, start: next)
                if pageNumber != 0 && full == stored {
                    result.droppedFrames += 1
                    if commitSize != 0 { result.droppedCommits += 1 }
                }
                chain = stored
                continue
            }
            var reason: String?
            if !saltsMatch {
                reason = "salt mismatch (a frame from an earlier WAL generation, or damage)"
            } else if pageNumber == 0 {
                reason = "page number 0"
            } else {
                let next = checksum(frame, 0..<8, littleEndian: littleEndian, start: sum)
                let full = checksum(frame, frameHeaderSize..<frameSize, littleEndian: littleEndian, start: next)
                if full.0 != bigEndian(frame, 16) || full.1 != bigEndian(frame, 20) {
                    reason = "checksum mismatch"
                } else {
                    sum = full
                }
            }
            if let reason {
                broken = true
                chain = (bigEndian(frame, 16), bigEndian(frame, 20))
                result.firstInvalidFrame = index
                result.invalidReason = reason
                continue
            }
            result.validFrames = index
            pendingPages.insert(pageNumber)
            if commitSize != 0 {
                result.committedFrames = index
                result.commits += 1
                result.committedDatabasePages = commitSize
                pages.formUnion(pendingPages)
                pendingPages.removeAll()
            }
        }
        result.pagesTouched = pages.count
        try file.close()
        return result
    }

    /// `inspect` for a WAL that a live writer may be appending to. A frame read while it is
    /// being written looks broken, and a commit written right after it looks dropped; real
    /// damage stays where it is. So a finding of dropped commits counts only when it reads
    /// the same (same salts, same first invalid frame) three times over 100 ms.
    public static func inspectConfirmed(_ path: String) throws -> WALInspection {
        var result = try inspect(path)
        var agreeing = 1
        var reads = 1
        while result.droppedCommits > 0 && agreeing < 3 && reads < 10 {
            Clock.sleep(seconds: 0.05)
            let again = try inspect(path)
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

    static func bigEndian(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// SQLite's WAL checksum: for each pair of 32-bit words (a, b), s0 += a + s1, s1 += b + s0.
    static func checksum(_ bytes: [UInt8], _ range: Range<Int>, littleEndian: Bool, start: (UInt32, UInt32)) -> (UInt32, UInt32) {
        var (s0, s1) = start
        bytes.withUnsafeBytes { raw in
            var offset = range.lowerBound
            while offset + 8 <= range.upperBound {
                var a = raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                var b = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                if littleEndian { a = UInt32(littleEndian: a); b = UInt32(littleEndian: b) } else { a = UInt32(bigEndian: a); b = UInt32(bigEndian: b) }
                s0 = s0 &+ a &+ s1
                s1 = s1 &+ b &+ s0
                offset += 8
            }
        }
        return (s0, s1)
    }
}
