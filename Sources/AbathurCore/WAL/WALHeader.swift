/// The 32-byte header of a `-wal` file (FACTS.md, "WAL file"; sqlite.org/fileformat2.html,
/// "WAL File Format"): eight big-endian 32-bit words, parsed once.
public struct WALHeader: Sendable, Equatable {
    public static let size = 32
    public static let magicLittleEndian: UInt32 = 0x377f_0682
    public static let magicBigEndian: UInt32 = 0x377f_0683
    public static let formatVersion: UInt32 = 3_007_000

    public var magic: UInt32
    public var format: UInt32
    /// The page size as stored; `pageSizeIsValid` says whether SQLite accepts it.
    public var pageSize: Int
    public var checkpointSequence: UInt32
    public var salt1: UInt32
    public var salt2: UInt32
    /// Checksum-1 and -2 as stored in bytes 24..31.
    public var storedChecksum: WALChecksum
    /// The checksum computed over bytes 0..23 equals the stored one.
    public var checksumIsValid: Bool

    /// Why SQLite ignores the whole WAL.
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case tooShort
        case badMagic(UInt32)
        case unknownFormat(UInt32)
        case badPageSize(Int)
        case checksumMismatch

        public var description: String {
            switch self {
            case .empty: return "empty WAL (nothing to replay)"
            case .tooShort: return "WAL shorter than its 32-byte header"
            case .badMagic(let magic): return "bad WAL magic 0x\(String(magic, radix: 16))"
            case .unknownFormat(let format): return "unknown WAL format version \(format)"
            case .badPageSize(let size): return "invalid WAL page size \(size)"
            case .checksumMismatch: return "WAL header checksum mismatch: SQLite ignores this WAL"
            }
        }
    }

    /// Parses the header from the file's first bytes; throws when they are too few or the
    /// magic is wrong (nothing else in them can be trusted then).
    public init(bytes: [UInt8]) throws(Problem) {
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count >= WALHeader.size else { throw .tooShort }
        magic = bytes.bigEndianUInt32(at: 0)
        guard magic == WALHeader.magicLittleEndian || magic == WALHeader.magicBigEndian else { throw .badMagic(magic) }
        format = bytes.bigEndianUInt32(at: 4)
        pageSize = Int(bytes.bigEndianUInt32(at: 8))
        checkpointSequence = bytes.bigEndianUInt32(at: 12)
        salt1 = bytes.bigEndianUInt32(at: 16)
        salt2 = bytes.bigEndianUInt32(at: 20)
        storedChecksum = WALChecksum(bytes.bigEndianUInt32(at: 24), bytes.bigEndianUInt32(at: 28))
        let littleEndian = magic == WALHeader.magicLittleEndian
        checksumIsValid = bytes.withUnsafeBytes {
            WALChecksum.zero.adding(UnsafeRawBufferPointer(rebasing: $0[0..<24]), littleEndian: littleEndian)
        } == storedChecksum
    }

    /// The low bit of the magic: checksums are computed over little-endian words (…82) or
    /// big-endian ones (…83).
    public var checksumsLittleEndian: Bool { magic == WALHeader.magicLittleEndian }

    /// A power of two from 512 to 65536.
    public var pageSizeIsValid: Bool { pageSize >= 512 && pageSize <= 65536 && pageSize & (pageSize - 1) == 0 }

    /// The format and page size let the frames be found, even when the checksum says SQLite
    /// ignores them (then they are all past the break).
    public var framesAreReadable: Bool { format == WALHeader.formatVersion && pageSizeIsValid }

    /// Why SQLite ignores this WAL; nil when it reads it.
    public var problem: Problem? {
        if format != WALHeader.formatVersion { return .unknownFormat(format) }
        if !pageSizeIsValid { return .badPageSize(pageSize) }
        return checksumIsValid ? nil : .checksumMismatch
    }

    /// The 24-byte frame header plus one page.
    public var frameSize: Int { WALFrame.headerSize + pageSize }
}

/// SQLite's cumulative WAL checksum: for each pair of 32-bit words (a, b), s0 += a + s1,
/// s1 += b + s0 (mod 2^32), the words read in the byte order the header's magic names.
public struct WALChecksum: Sendable, Equatable, CustomStringConvertible {
    public var s0: UInt32
    public var s1: UInt32

    public init(_ s0: UInt32, _ s1: UInt32) {
        self.s0 = s0
        self.s1 = s1
    }

    public static let zero = WALChecksum(0, 0)

    public var description: String { "\(s0)/\(s1)" }

    /// This checksum continued over `bytes` (a multiple of 8 bytes).
    public func adding(_ bytes: UnsafeRawBufferPointer, littleEndian: Bool) -> WALChecksum {
        var (s0, s1) = (self.s0, self.s1)
        var offset = 0
        while offset + 8 <= bytes.count {
            let a = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            let b = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            s0 = s0 &+ (littleEndian ? UInt32(littleEndian: a) : UInt32(bigEndian: a)) &+ s1
            s1 = s1 &+ (littleEndian ? UInt32(littleEndian: b) : UInt32(bigEndian: b)) &+ s0
            offset += 8
        }
        return WALChecksum(s0, s1)
    }
}
