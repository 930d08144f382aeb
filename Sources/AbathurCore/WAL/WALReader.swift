/// One frame of a `-wal` file, as the reader found it.
public struct WALFrame: Sendable, Equatable {
    public static let headerSize = 24

    /// Why SQLite's recovery stops at a frame.
    public enum Break: Sendable, Equatable, CustomStringConvertible {
        /// Salts other than the header's: a frame of an earlier WAL generation left behind a
        /// checkpoint reset (normal), or a damaged salt field.
        case saltMismatch
        case pageZero
        /// The cumulative checksum does not verify: damage.
        case checksumMismatch

        public var description: String {
            switch self {
            case .saltMismatch: return "salt mismatch (a frame from an earlier WAL generation, or damage)"
            case .pageZero: return "page number 0"
            case .checksumMismatch: return "checksum mismatch"
            }
        }
    }

    /// Where the frame stands in SQLite's recovery.
    public enum Standing: Sendable, Equatable {
        /// In the valid prefix SQLite's recovery reads.
        case valid
        /// The first frame SQLite's recovery rejects, and why.
        case firstInvalid(Break)
        /// After the first invalid frame, or in a WAL whose header SQLite rejects: never read.
        case pastBreak
    }

    /// 1-based, in file order.
    public var index: Int
    /// Byte offset of the frame's header in the file.
    public var offset: Int64
    public var pageNumber: UInt32
    /// The database size in pages after this commit; 0 when this is not a commit frame.
    public var commitSize: UInt32
    public var salt1: UInt32
    public var salt2: UInt32
    /// The salts are the header's: the frame belongs to this WAL generation.
    public var saltsMatch: Bool
    /// Checksum-1 and -2 as stored in the frame header.
    public var storedChecksum: WALChecksum
    /// The cumulative checksum verifies: computed over frame-header bytes 0..7 and the page,
    /// continuing the chain (the previous frame of this generation's stored checksum, or the
    /// header's for the first frame), it equals the stored one. Past the break the chain is
    /// seeded from the broken frame's stored checksum, so intact later frames still verify.
    public var checksumVerifies: Bool
    public var standing: Standing

    public var isCommit: Bool { commitSize != 0 }
}

/// Reads a `-wal` file offline, frame by frame, the way SQLite's recovery reads it (FACTS.md,
/// "WAL file"): the header once, then each frame in order with its place in the checksum
/// chain. Never through SQLite and never writing: the file is opened read-only, and memory
/// stays at one frame whatever the WAL's size.
///
/// The chain: a frame's checksum continues from the previous frame's. Up to the first invalid
/// frame that is the computed (and verified) checksum; the first invalid frame's stored
/// checksum seeds the chain after it, and past the break each frame with the header's salts
/// moves the chain on to its stored checksum, while frames of other generations are skipped.
/// With a header SQLite rejects (bad checksum), every frame is past the break and the chain
/// starts from the header's stored checksum.
///
/// A broken link leaves two seeds: its stored checksum (right when its header or page was
/// damaged) and the one computed over it (right when only the stored checksum was damaged).
/// The frame after it verifies when it continues either one.
public final class WALReader {
    public let path: String
    public let fileSize: Int64
    /// Nil when the file is empty, shorter than a header, or has a bad magic.
    public let header: WALHeader?
    /// Why SQLite ignores the whole WAL; nil when it reads it.
    public let headerProblem: WALHeader.Problem?
    /// Whole frames in the file when it was opened (the last may be torn off after them).
    public let framesInFile: Int
    /// Bytes after the last whole frame: a torn tail.
    public let trailingBytes: Int64

    let file: FileDescriptor
    var buffer: [UInt8]
    var nextIndex = 1
    var chain: WALChecksum
    /// Past a broken link, the other seed it leaves: the checksum computed over it. When only
    /// its stored checksum was damaged, that is the seed the next frame continues from.
    var alternate: WALChecksum?
    var broken: Bool

    /// Opens the WAL at `path` read-only and parses its header. Throws only when the file
    /// cannot be read at all.
    public init(_ path: String) throws {
        self.path = path
        let file = try FileDescriptor.openForReading(path)
        self.file = file
        fileSize = try file.status().size
        var bytes = [UInt8](repeating: 0, count: WALHeader.size)
        let got = try bytes.withUnsafeMutableBytes { try file.readFully(into: $0) }
        var header: WALHeader?
        do {
            header = try WALHeader(bytes: Array(bytes.prefix(got)))
            headerProblem = header!.problem
        } catch {
            headerProblem = error
        }
        self.header = header
        if let header, header.framesAreReadable {
            let body = fileSize - Int64(WALHeader.size)
            framesInFile = Int(body / Int64(header.frameSize))
            trailingBytes = body % Int64(header.frameSize)
            buffer = [UInt8](repeating: 0, count: header.frameSize)
            chain = header.storedChecksum
            if !header.checksumIsValid { alternate = bytes.withUnsafeBytes { WALChecksum.zero.adding(UnsafeRawBufferPointer(rebasing: $0[0..<24]), littleEndian: header.checksumsLittleEndian) } }
        } else {
            framesInFile = 0
            trailingBytes = 0
            buffer = []
            chain = .zero
        }
        broken = headerProblem != nil
    }

    /// The next whole frame, or nil after the last (or when the file shrank meanwhile).
    public func next() throws -> WALFrame? {
        guard let header, nextIndex <= framesInFile else { return nil }
        let n = try buffer.withUnsafeMutableBytes { try file.readFully(into: $0) }
        guard n == buffer.count else { return nil }
        let index = nextIndex
        nextIndex += 1
        let salt1 = buffer.bigEndianUInt32(at: 8)
        let salt2 = buffer.bigEndianUInt32(at: 12)
        let saltsMatch = salt1 == header.salt1 && salt2 == header.salt2
        let stored = WALChecksum(buffer.bigEndianUInt32(at: 16), buffer.bigEndianUInt32(at: 20))
        let computed = continuing(chain, littleEndian: header.checksumsLittleEndian)
        var frame = WALFrame(index: index, offset: Int64(WALHeader.size) + Int64(index - 1) * Int64(buffer.count),
                             pageNumber: buffer.bigEndianUInt32(at: 0), commitSize: buffer.bigEndianUInt32(at: 4),
                             salt1: salt1, salt2: salt2, saltsMatch: saltsMatch, storedChecksum: stored,
                             checksumVerifies: computed == stored, standing: .pastBreak)
        if broken {
            // Other generations' frames are not links of this chain.
            guard saltsMatch else {
                frame.checksumVerifies = false
                return frame
            }
            if !frame.checksumVerifies, let alternate, continuing(alternate, littleEndian: header.checksumsLittleEndian) == stored {
                frame.checksumVerifies = true
            }
            alternate = frame.checksumVerifies ? nil : computed
            chain = stored
            return frame
        }
        let reason: WALFrame.Break? = !saltsMatch ? .saltMismatch : frame.pageNumber == 0 ? .pageZero
            : frame.checksumVerifies ? nil : .checksumMismatch
        if let reason {
            broken = true
            alternate = computed
            frame.standing = .firstInvalid(reason)
        } else {
            frame.standing = .valid
        }
        chain = stored
        return frame
    }

    /// The checksum `seed` continued over the frame in the buffer (header bytes 0..7, page).
    func continuing(_ seed: WALChecksum, littleEndian: Bool) -> WALChecksum {
        buffer.withUnsafeBytes { raw in
            seed.adding(UnsafeRawBufferPointer(rebasing: raw[0..<8]), littleEndian: littleEndian)
                .adding(UnsafeRawBufferPointer(rebasing: raw[WALFrame.headerSize...]), littleEndian: littleEndian)
        }
    }

    /// The page image of the frame `next` returned last.
    public func page() -> [UInt8] { Array(buffer.dropFirst(WALFrame.headerSize)) }

    /// Closes the file now, reporting a close error.
    public func close() throws { try file.close() }
}
