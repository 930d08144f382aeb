/// One b-tree page (fileformat2.html, "B-tree Pages"), parsed from its bytes with every
/// offset checked: a damaged page gives nil or fewer cells, never a crash.
public struct BTreePage: Sendable {
    public enum Kind: UInt8, Sendable {
        case indexInterior = 2
        case tableInterior = 5
        case indexLeaf = 10
        case tableLeaf = 13

        public var isLeaf: Bool { self == .indexLeaf || self == .tableLeaf }
        public var isTable: Bool { self == .tableInterior || self == .tableLeaf }
        var headerSize: Int { isLeaf ? 8 : 12 }
    }

    public let number: UInt32
    public let bytes: [UInt8]
    public let kind: Kind
    /// Where the b-tree header starts: 100 on page 1, after the database header.
    public let headerOffset: Int
    public let cellCount: Int
    /// The right-most child of an interior page.
    public let rightChild: UInt32
    /// The usable size: the page size less the reserved bytes at the end of each page.
    public let usableSize: Int

    /// Parses the b-tree header of page `number`; nil when the type byte is not a b-tree
    /// page's, or the cell-pointer array does not fit in the page.
    public init?(number: UInt32, bytes: [UInt8], usableSize: Int) {
        let headerOffset = number == 1 ? DatabaseHeader.size : 0
        guard bytes.count >= headerOffset + 12, usableSize <= bytes.count, usableSize >= 480,
              let kind = Kind(rawValue: bytes[headerOffset]) else { return nil }
        let cellCount = Int(bytes.bigEndianUInt16(at: headerOffset + 3))
        guard headerOffset + kind.headerSize + 2 * cellCount <= usableSize else { return nil }
        self.number = number
        self.bytes = bytes
        self.kind = kind
        self.headerOffset = headerOffset
        self.cellCount = cellCount
        self.rightChild = kind.isLeaf ? 0 : bytes.bigEndianUInt32(at: headerOffset + 8)
        self.usableSize = usableSize
    }

    /// The offset of cell `index`, from the cell-pointer array; nil when it points outside
    /// the cell content area.
    public func cellOffset(_ index: Int) -> Int? {
        let pointer = Int(bytes.bigEndianUInt16(at: headerOffset + kind.headerSize + 2 * index))
        let arrayEnd = headerOffset + kind.headerSize + 2 * cellCount
        guard pointer >= arrayEnd, pointer < usableSize else { return nil }
        return pointer
    }

    /// The left child and key of a table-interior cell.
    public func tableInteriorCell(_ index: Int) -> (child: UInt32, key: Int64)? {
        guard kind == .tableInterior, let offset = cellOffset(index), offset + 5 <= usableSize,
              let (key, _) = Varint.read(bytes, at: offset + 4, end: usableSize) else { return nil }
        return (bytes.bigEndianUInt32(at: offset), key)
    }

    /// The left child of an index-interior cell.
    public func indexInteriorChild(_ index: Int) -> UInt32? {
        guard kind == .indexInterior, let offset = cellOffset(index), offset + 4 <= usableSize else { return nil }
        return bytes.bigEndianUInt32(at: offset)
    }

    /// Every child page of an interior page, the right-most last.
    public var children: [UInt32] {
        var result: [UInt32] = []
        for i in 0..<cellCount {
            if let child = kind == .tableInterior ? tableInteriorCell(i)?.child : indexInteriorChild(i) { result.append(child) }
        }
        if !kind.isLeaf { result.append(rightChild) }
        return result
    }
}

/// A table-leaf cell (or an index cell) as it lies in its page: the payload's size, the part
/// stored on the page and the first overflow page.
public struct LocalPayload: Sendable {
    public var rowid: Int64
    public var payloadSize: Int
    public var local: [UInt8]
    /// 0 when the whole payload is local.
    public var firstOverflow: UInt32
    /// The cell's bytes on the page, from its first byte.
    public var cellLength: Int

    /// How much of a payload of `size` bytes stays on a page (fileformat2.html, "Cell
    /// Payload Overflow Pages").
    public static func localSize(payload size: Int, usableSize u: Int, table: Bool) -> Int {
        let x = table ? u - 35 : (u - 12) * 64 / 255 - 23
        if size <= x { return size }
        let m = (u - 12) * 32 / 255 - 23
        let k = m + (size - m) % (u - 4)
        return k <= x ? k : m
    }

    /// Parses the table-leaf cell at `offset` in `bytes`, using `usableSize` as the end of
    /// the page; nil when it does not fit.
    public static func tableLeafCell(_ bytes: [UInt8], at offset: Int, usableSize: Int) -> LocalPayload? {
        guard let (size, n1) = Varint.read(bytes, at: offset, end: usableSize), size >= 0, size < Int64(1 << 30),
              let (rowid, n2) = Varint.read(bytes, at: offset + n1, end: usableSize) else { return nil }
        return payload(bytes, start: offset + n1 + n2, cellStart: offset, size: Int(size), rowid: rowid, usableSize: usableSize, table: true)
    }

    /// Parses the index cell at `offset` (after the child pointer on interior pages).
    public static func indexCell(_ bytes: [UInt8], at offset: Int, usableSize: Int) -> LocalPayload? {
        guard let (size, n1) = Varint.read(bytes, at: offset, end: usableSize), size >= 0, size < Int64(1 << 30) else { return nil }
        return payload(bytes, start: offset + n1, cellStart: offset, size: Int(size), rowid: 0, usableSize: usableSize, table: false)
    }

    static func payload(_ bytes: [UInt8], start: Int, cellStart: Int, size: Int, rowid: Int64, usableSize: Int, table: Bool) -> LocalPayload? {
        let local = localSize(payload: size, usableSize: usableSize, table: table)
        let overflow = local < size
        let end = start + local + (overflow ? 4 : 0)
        guard end <= usableSize, end <= bytes.count else { return nil }
        return LocalPayload(rowid: rowid, payloadSize: size, local: Array(bytes[start..<start + local]),
                            firstOverflow: overflow ? bytes.bigEndianUInt32(at: start + local) : 0, cellLength: end - cellStart)
    }
}

/// Reads whole payloads, following overflow chains with every link checked: a chain that
/// leaves the file, loops or ends early gives nil, and the pages it used are named so that
/// nobody else claims them.
public struct PayloadReader {
    public let source: PageSource
    public let usableSize: Int

    public init(source: PageSource, usableSize: Int) {
        self.source = source
        self.usableSize = usableSize
    }

    /// The whole payload of `cell`, and the overflow pages it read.
    public func read(_ cell: LocalPayload) -> (payload: [UInt8], overflow: [UInt32])? {
        if cell.firstOverflow == 0 { return cell.local.count == cell.payloadSize ? (cell.local, []) : nil }
        var payload = cell.local
        payload.reserveCapacity(cell.payloadSize)
        var pages: [UInt32] = []
        var next = cell.firstOverflow
        let perPage = usableSize - 4
        let needed = (cell.payloadSize - cell.local.count + perPage - 1) / perPage
        while payload.count < cell.payloadSize {
            guard next >= 2, next <= source.pageCount, pages.count < needed, !pages.contains(next),
                  let page = source.page(next) else { return nil }
            pages.append(next)
            let take = min(perPage, cell.payloadSize - payload.count)
            payload += page[4..<4 + take]
            next = page.bigEndianUInt32(at: 0)
        }
        return (payload, pages)
    }
}

/// The freelist (fileformat2.html, "The Freelist"): trunk pages, each naming the next trunk
/// and a list of leaf pages. Read with every link checked; a loop or an out-of-range page
/// ends the walk and is counted.
public struct Freelist: Sendable {
    public var trunks: [UInt32] = []
    public var leaves: [UInt32] = []
    public var problems: [String] = []

    public var pages: Set<UInt32> { Set(trunks).union(leaves) }

    /// Walks the freelist from `firstTrunk`. `stopAt` says a page is known to be something
    /// else (a b-tree page): a trunk pointer to it is damage, and the walk stops there.
    public static func read(from source: PageSource, firstTrunk: UInt32, usableSize: Int, stopAt: (UInt32) -> Bool) -> Freelist {
        var list = Freelist()
        var seen: Set<UInt32> = []
        var trunk = firstTrunk
        let maxLeaves = usableSize / 4 - 2
        while trunk != 0 {
            guard trunk <= source.pageCount, !seen.contains(trunk) else {
                list.problems.append("freelist trunk \(trunk) is out of range or repeats")
                break
            }
            guard !stopAt(trunk), let page = source.page(trunk) else {
                list.problems.append("freelist trunk \(trunk) is a live or unreadable page")
                break
            }
            seen.insert(trunk)
            list.trunks.append(trunk)
            let count = Int(page.bigEndianUInt32(at: 4))
            guard count <= maxLeaves else {
                list.problems.append("freelist trunk \(trunk) claims \(count) leaves")
                break
            }
            guard list.leaves.count + count <= Int(source.pageCount) else {
                list.problems.append("freelist trunk \(trunk) takes the freelist past the file's size")
                break
            }
            for i in 0..<count {
                let leaf = page.bigEndianUInt32(at: 8 + 4 * i)
                if leaf >= 2, leaf <= source.pageCount, !stopAt(leaf) { list.leaves.append(leaf) }
                else { list.problems.append("freelist leaf \(leaf) on trunk \(trunk) is out of range or a live page") }
            }
            trunk = page.bigEndianUInt32(at: 0)
        }
        return list
    }
}
