/// The `-shm` (SQLite's wal-index, sqlite.org/walformat.html), read raw: the two copies of its
/// header, the checkpoint's progress and the readers' marks. Written by SQLite in the host's
/// byte order; nothing here writes it.
public struct WALIndexFile: Sendable, Equatable {
    public static let headerCopySize = 48
    /// Where the lock slots start (WALINDEX_LOCK_OFFSET); slot 0 write, 1 checkpoint,
    /// 2 recover, 3+i reader i; 128 is the "dead man switch" every connection holds.
    public static let lockOffset: Int64 = 120
    public static let readers = 5

    /// The two header copies are identical (a writer that died mid-update leaves them apart).
    public var copiesAgree: Bool
    /// The header says it is initialised (isInit).
    public var initialised: Bool
    /// The last valid commit frame SQLite knows of.
    public var mxFrame: UInt32
    /// The database size in pages after that commit.
    public var pages: UInt32
    public var pageSize: Int
    /// Frames already copied into the database by checkpoints.
    public var nBackfill: UInt32
    /// Each reader slot's mark: the mxFrame its snapshot ends at (0xffffffff: unused).
    public var readMarks: [UInt32]
    /// The salts as SQLite stores them (the WAL header's bytes 16..23, unchanged).
    var saltBytes: [UInt8]

    /// Reads the first 136 bytes of `path`; nil when it is missing or shorter than that.
    public static func read(_ path: String) throws -> WALIndexFile? {
        guard try FileStatus.of(path)?.isRegular == true else { return nil }
        let file = try FileDescriptor.openForReading(path)
        defer { try? file.close() }
        var bytes = [UInt8](repeating: 0, count: 136)
        let got = try bytes.withUnsafeMutableBytes { try file.readFully(into: $0) }
        guard got == bytes.count else { return nil }
        return WALIndexFile(bytes)
    }

    init(_ b: [UInt8]) {
        func u32(_ at: Int) -> UInt32 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) } }
        copiesAgree = b[0..<48] == b[48..<96]
        initialised = b[12] != 0
        mxFrame = u32(16)
        pages = u32(20)
        let size = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 14, as: UInt16.self) })
        pageSize = size == 1 ? 65536 : size
        saltBytes = Array(b[32..<40])
        nBackfill = u32(96)
        readMarks = (0..<WALIndexFile.readers).map { u32(100 + 4 * $0) }
    }

    /// Its header names the same WAL generation as `header` (the same salts).
    public func describes(_ header: WALHeader) -> Bool {
        saltBytes == header.salt1.bigEndianBytes + header.salt2.bigEndianBytes
    }

    /// The name of the lock slot at `offset` in the `-shm`.
    public static func slotName(_ offset: Int64) -> String {
        switch offset - lockOffset {
        case 0: return "write lock"
        case 1: return "checkpoint lock"
        case 2: return "recovery lock"
        case 3..<8: return "read mark \(offset - lockOffset - 3)"
        case 8: return "connection (DMS)"
        default: return "byte \(offset)"
        }
    }
}

extension UInt32 {
    var bigEndianBytes: [UInt8] { [UInt8(self >> 24), UInt8(self >> 16 & 0xff), UInt8(self >> 8 & 0xff), UInt8(self & 0xff)] }
}
