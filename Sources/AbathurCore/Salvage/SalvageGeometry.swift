/// How to read a database whose header may be damaged: the page size, the reserved bytes,
/// the text encoding, the ids and the freelist's first trunk. From the header when it parses;
/// field by field where only part of it is readable; from the newest backup's manifest, or
/// by looking at where b-tree pages start, where it is gone.
public struct SalvageGeometry: Sendable, Encodable {
    public var pageSize: Int
    public var reservedBytes: Int
    public var encoding: UInt32
    public var userVersion: UInt32
    public var applicationId: UInt32
    public var firstFreelistTrunk: UInt32
    public var autoVacuum: Bool
    /// The file was in WAL mode (format versions 2/2); when the header is gone, assumed, as
    /// the service's database is (SPEC.md).
    public var wal: Bool
    /// What was wrong with the header, if anything, and where each value came from.
    public var headerProblem: String?
    public var pageSizeFrom: String

    public var usableSize: Int { pageSize - reservedBytes }
    public var textEncoding: TextEncoding { TextEncoding(rawValue: encoding) ?? .utf8 }

    public static func read(_ path: String, manifest: Manifest?) throws -> SalvageGeometry {
        let bytes = try FilePageSource.prefix(of: path, count: 1 << 20)
        do {
            let header = try DatabaseHeader(bytes: Array(bytes.prefix(DatabaseHeader.size)))
            return SalvageGeometry(pageSize: header.pageSize, reservedBytes: Int(header.reservedBytes), encoding: max(1, header.textEncoding),
                                   userVersion: header.userVersion, applicationId: header.applicationID,
                                   firstFreelistTrunk: header.firstFreelistTrunk, autoVacuum: header.largestRootPage != 0,
                                   wal: header.isWAL, headerProblem: nil, pageSizeFrom: "header")
        } catch {
            let problem = bytes.isEmpty ? "empty file" : error.description
            // Field by field: a damaged magic leaves the page size and the rest readable.
            let whole = bytes.count >= DatabaseHeader.size
            func u32(_ o: Int) -> UInt32 { whole ? bytes.bigEndianUInt32(at: o) : 0 }
            let raw = whole ? Int(bytes.bigEndianUInt16(at: 16)) : 0
            let fieldSize = raw == 1 ? 65536 : raw
            let fieldValid = fieldSize >= 512 && fieldSize <= 65536 && fieldSize & (fieldSize - 1) == 0
            let probed = probePageSize(bytes)
            var pageSize: Int, from: String
            if fieldValid && (probed == nil || probed == fieldSize) { (pageSize, from) = (fieldSize, "header") }
            else if let size = manifest?.database.pageSize { (pageSize, from) = (size, "the newest backup's manifest") }
            else if let probed { (pageSize, from) = (probed, "the layout of the b-tree pages") }
            else { (pageSize, from) = (4096, "the default (nothing else told)") }
            // The other fields are trusted only when the header is otherwise sane.
            let sane = whole && fieldValid && pageSize == fieldSize && (1...3).contains(u32(56)) && bytes[21] == 64 && bytes[22] == 32 && bytes[23] == 32
            let reserved = sane ? Int(bytes[20]) : 0
            return SalvageGeometry(
                pageSize: pageSize, reservedBytes: reserved < pageSize - 480 ? reserved : 0, encoding: sane ? u32(56) : 1,
                userVersion: sane ? u32(60) : UInt32(truncatingIfNeeded: manifest?.database.userVersion ?? 0),
                applicationId: sane ? u32(68) : UInt32(truncatingIfNeeded: manifest?.database.applicationId ?? 0),
                firstFreelistTrunk: sane ? u32(32) : 0, autoVacuum: sane && u32(52) != 0,
                wal: sane ? bytes[18] == 2 : true, headerProblem: problem, pageSizeFrom: from)
        }
    }

    /// The page size at which the file's pages look like b-tree pages: a valid type byte, a
    /// cell count that fits and a content offset inside the page. Twice the real size looks
    /// as good (every other page), half of it half as good: the smallest size that scores
    /// near the best wins. Nil when no size finds two such pages.
    static func probePageSize(_ head: [UInt8]) -> Int? {
        var ratios: [(size: Int, ratio: Double)] = []
        var size = 512
        while size <= 65536 {
            var hits = 0, probes = 0
            var page = 1
            while page * size + 8 <= head.count, page < 256 {
                let o = page * size
                probes += 1
                if [2, 5, 10, 13].contains(head[o]) {
                    let cells = Int(head.bigEndianUInt16(at: o + 3)), content = Int(head.bigEndianUInt16(at: o + 5))
                    if cells * 2 + 12 <= size, content <= size { hits += 1 }
                }
                page += 1
            }
            if hits >= 2 { ratios.append((size, Double(hits) / Double(probes))) }
            size *= 2
        }
        guard let best = ratios.map(\.ratio).max() else { return nil }
        return ratios.first { $0.ratio >= 0.75 * best }?.size
    }
}
