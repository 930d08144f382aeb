/// The first 100 bytes of an SQLite database file (fileformat2.html, "The Database Header"),
/// read from raw bytes before SQLite opens the file.
public struct DatabaseHeader: Sendable, Equatable {
    public static let size = 100
    static let magic: [UInt8] = Array("SQLite format 3\0".utf8)

    public var pageSize: Int
    public var writeVersion: UInt8
    public var readVersion: UInt8
    public var reservedBytes: UInt8
    public var changeCounter: UInt32
    public var pageCount: UInt32
    public var firstFreelistTrunk: UInt32
    public var freelistCount: UInt32
    public var schemaCookie: UInt32
    public var schemaFormat: UInt32
    /// The largest root b-tree page in auto-vacuum modes (offset 52); 0 without auto-vacuum.
    public var largestRootPage: UInt32
    /// Non-zero in incremental-vacuum mode (offset 64).
    public var incrementalVacuumFlag: UInt32
    public var textEncoding: UInt32
    public var userVersion: UInt32
    public var applicationID: UInt32
    public var versionValidFor: UInt32
    public var sqliteVersion: UInt32

    /// Why a file is not a database we can trust, in words for a diagnostic.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case empty
        case tooShort(Int)
        case badMagic
        case badPageSize(Int)
        case badField(String)

        public var description: String {
            switch self {
            case .empty: return "empty file, not an SQLite database"
            case .tooShort(let n): return "only \(n) bytes, too short for an SQLite database"
            case .badMagic: return "not an SQLite database (bad header magic)"
            case .badPageSize(let n): return "invalid page size \(n) in the header"
            case .badField(let what): return "invalid header: \(what)"
            }
        }
    }

    public init(bytes: [UInt8]) throws(Problem) {
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count >= DatabaseHeader.size else { throw .tooShort(bytes.count) }
        guard Array(bytes[0..<16]) == DatabaseHeader.magic else { throw .badMagic }
        func u32(_ o: Int) -> UInt32 { bytes.bigEndianUInt32(at: o) }
        let rawPageSize = Int(bytes.bigEndianUInt16(at: 16))
        pageSize = rawPageSize == 1 ? 65536 : rawPageSize
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else { throw .badPageSize(rawPageSize) }
        writeVersion = bytes[18]
        readVersion = bytes[19]
        reservedBytes = bytes[20]
        guard (1...2).contains(writeVersion), (1...2).contains(readVersion) else {
            throw .badField("file format versions \(writeVersion)/\(readVersion)")
        }
        guard bytes[21] == 64, bytes[22] == 32, bytes[23] == 32 else { throw .badField("payload fractions") }
        changeCounter = u32(24)
        pageCount = u32(28)
        firstFreelistTrunk = u32(32)
        freelistCount = u32(36)
        schemaCookie = u32(40)
        schemaFormat = u32(44)
        largestRootPage = u32(52)
        textEncoding = u32(56)
        incrementalVacuumFlag = u32(64)
        userVersion = u32(60)
        applicationID = u32(68)
        versionValidFor = u32(92)
        sqliteVersion = u32(96)
        guard schemaFormat <= 4 else { throw .badField("schema format \(schemaFormat)") }
        guard textEncoding <= 3 else { throw .badField("text encoding \(textEncoding)") }
    }

    /// The size in pages is only valid when the change counter matches version-valid-for.
    public var pageCountIsValid: Bool { pageCount > 0 && versionValidFor == changeCounter }

    /// `PRAGMA auto_vacuum` as the header records it.
    public enum AutoVacuum: String, Sendable, Encodable {
        case none, full, incremental
    }

    public var autoVacuum: AutoVacuum {
        largestRootPage == 0 ? .none : incrementalVacuumFlag != 0 ? .incremental : .full
    }

    /// WAL mode is recorded as format versions 2/2.
    public var isWAL: Bool { writeVersion == 2 && readVersion == 2 }

    /// Reads and parses the header of the file at `path`. The file is opened and closed before
    /// SQLite touches it (FACTS.md 14).
    public static func read(_ path: String, followSymlinks: Bool = false) throws -> (header: DatabaseHeader, fileSize: Int64) {
        let file = try FileDescriptor.openForReading(path, followSymlinks: followSymlinks)
        let status = try file.status()
        guard status.isRegular else { throw AbathurError(.unsafePath, path, "not a regular file") }
        var bytes = [UInt8](repeating: 0, count: size)
        let n = try bytes.withUnsafeMutableBytes { (buffer) in try file.readFully(into: buffer) }
        try file.close()
        do {
            return (try DatabaseHeader(bytes: Array(bytes.prefix(n))), status.size)
        } catch {
            throw AbathurError(.notADatabase, path, error.description)
        }
    }
}
