/// Where a salvaged row was found.
public enum SalvageRowSource: String, Sendable, Encodable {
    /// In its table's b-tree, walked from the root.
    case tree
    /// On a table-leaf page that no b-tree reached, attributed to its table by shape.
    case orphan
    /// Cut out of a page whose header or cell pointers were destroyed.
    case carved
}

/// Takes the rows a salvage finds: the new database, or nothing during a survey.
public protocol SalvageSink: AnyObject {
    /// Stores a row of table `table` (an index into the schema's tables). A row whose rowid
    /// is already there is a duplicate (the first one found wins: the tree's); a constraint
    /// may refuse it. Throws only when the store itself fails (no space, I/O).
    func insert(table: Int, rowid: Int64, values: [SQLValue]) throws -> InsertResult
    /// Stores a row no table could be given, in `lost_and_found`.
    func lost(page: UInt32, cell: Int, rowid: Int64?, values: [SQLValue], reason: String) throws
}

public enum InsertResult: Sendable, Equatable {
    case inserted
    case duplicate
    case rejected(String)
}

/// Reads every row it can out of a damaged database, page by page, from a `PageSource`
/// (fileformat2.html): the schema's b-tree, then each table's from its root, each index's
/// (only to know its pages), the freelist, then every page nobody reached. Nothing it reads
/// is trusted: every pointer is range-checked, every page is used once, depth is bounded,
/// and a page that does not parse is carved for well-formed cells. It never throws on
/// damage; it counts it (`problems`).
public final class Salvager {
    public struct TableCounts: Sendable, Encodable {
        public var tree = 0
        public var orphan = 0
        public var carved = 0
        /// Found again (an older copy of a page, or two pages reaching the same row).
        public var duplicates = 0
        /// Refused by a constraint, or a rowid out of order: went to lost_and_found.
        public var toLostAndFound = 0
        public var total: Int { tree + orphan + carved }
    }

    /// A key range of a table whose pages the walk could not read: where orphan pages of
    /// that table belong.
    struct Hole {
        var table: Int
        var low: Int64?   // exclusive
        var high: Int64?  // inclusive
        func covers(_ a: Int64, _ b: Int64) -> Bool { (low.map { a > $0 } ?? true) && (high.map { b <= $0 } ?? true) }
    }

    public let source: PageSource
    public let usableSize: Int
    public let pageCount: UInt32
    let payloads: PayloadReader
    /// 0 unclaimed, 1 a b-tree page, 2 an overflow page, 3 a pointer-map or lock-byte page.
    var claimed: [UInt8]
    var holes: [Hole] = []
    public private(set) var counts: [TableCounts] = []
    public private(set) var lostRows = 0
    public private(set) var problemCount = 0
    public private(set) var problems: [String] = []
    public private(set) var freelistPages = 0
    public private(set) var orphanPagesAttributed = 0
    public private(set) var orphanPagesLost = 0
    public private(set) var pagesCarved = 0
    var schema = SalvageSchema()
    var sink: SalvageSink?
    /// The freelist's pages: read only with `--include-freelist`, and then given to the
    /// table their rows fit, holes or not (the operator asked for deleted rows).
    var freelistSet: Set<UInt32> = []
    static let schemaTable = -1
    static let maxDepth = 40

    /// Text is UTF-8 (header offset 56).
    let utf8: Bool

    public init(source: PageSource, usableSize: Int, autoVacuum: Bool = false, utf8: Bool = true) {
        self.utf8 = utf8
        self.source = source
        self.usableSize = usableSize
        pageCount = source.pageCount
        payloads = PayloadReader(source: source, usableSize: usableSize)
        claimed = [UInt8](repeating: 0, count: Int(pageCount) + 1)
        // SQLite never uses the page that holds the lock bytes at offset 1 GiB.
        let lockPage = Int(1 << 30 / source.pageSize) + 1
        if lockPage <= Int(pageCount) { claimed[lockPage] = 3 }
        if autoVacuum {
            var page = 2
            while page <= Int(pageCount) {
                claimed[page] = 3
                page += usableSize / 5 + 1
            }
        }
    }

    func problem(_ text: String) {
        problemCount += 1
        if problems.count < 50 { problems.append(text) }
    }

    // MARK: - The schema

    static let schemaShape = SalvageSchema.Table(
        name: "sqlite_schema", sql: "", rootPage: 1,
        columns: [SalvageSchema.Column(name: "type", affinity: .text, notNull: false, hasDefault: false),
                  SalvageSchema.Column(name: "name", affinity: .text, notNull: false, hasDefault: false),
                  SalvageSchema.Column(name: "tbl_name", affinity: .text, notNull: false, hasDefault: false),
                  SalvageSchema.Column(name: "rootpage", affinity: .integer, notNull: false, hasDefault: false),
                  SalvageSchema.Column(name: "sql", affinity: .text, notNull: false, hasDefault: false)],
        rowidAlias: nil, withoutRowid: false)
    var schemaRows: [[SQLValue]] = []

    /// The rows of `sqlite_schema`, walked from page 1.
    public func readSchemaRows() -> [[SQLValue]] {
        schemaRows = []
        // The schema's rows are only collected: nothing here can throw.
        try? walkTable(Salvager.schemaTable, page: 1, low: nil, high: nil, depth: 0)
        try? flushPending()
        return schemaRows
    }

    // MARK: - The walk

    /// Walks every table and index of `schema` from its root, reads the freelist, then
    /// scans the pages nobody reached. Rows go to `sink` (none during a survey).
    public func run(schema: SalvageSchema, firstFreelistTrunk: UInt32, includeFreelist: Bool, sink: SalvageSink?) throws {
        self.schema = schema
        self.sink = sink
        counts = Array(repeating: TableCounts(), count: schema.tables.count)
        for (t, table) in schema.tables.enumerated() where !table.withoutRowid {
            try walkTable(t, page: table.rootPage, low: nil, high: nil, depth: 0)
        }
        for index in schema.indexes { walkIndex(index.rootPage, depth: 0, name: index.name) }
        // A WITHOUT ROWID table is an index b-tree: its pages are claimed, its rows not read.
        for table in schema.tables where table.withoutRowid {
            problem("\(table.name): a WITHOUT ROWID table is not salvaged")
            walkIndex(table.rootPage, depth: 0, name: table.name)
        }
        try flushPending()
        let freelist = Freelist.read(from: source, firstTrunk: firstFreelistTrunk, usableSize: usableSize) { [claimed] page in
            Int(page) < claimed.count && claimed[Int(page)] != 0
        }
        for text in freelist.problems { problem(text) }
        freelistPages = freelist.pages.count
        freelistSet = freelist.pages
        try scanOrphans(skipping: includeFreelist ? [] : freelistSet)
        try flushPending()
    }

    /// Rows found in the walk, held until the walk ends so that a leaf whose rowids break
    /// the order of its neighbours can be judged. Emitted per leaf.
    var pending: [(table: Int, page: UInt32, cell: Int, rowid: Int64, values: [SQLValue], source: SalvageRowSource)] = []

    func flushPending() throws {
        let rows = pending
        pending = []
        for row in rows { try emit(row.table, page: row.page, cell: row.cell, rowid: row.rowid, values: row.values, source: row.source) }
    }

    func emit(_ t: Int, page: UInt32, cell: Int, rowid: Int64, values: [SQLValue], source: SalvageRowSource) throws {
        if t == Salvager.schemaTable { schemaRows.append(values); return }
        guard let sink else {
            switch source {
            case .tree: counts[t].tree += 1
            case .orphan: counts[t].orphan += 1
            case .carved: counts[t].carved += 1
            }
            return
        }
        switch try sink.insert(table: t, rowid: rowid, values: values) {
        case .inserted:
            switch source {
            case .tree: counts[t].tree += 1
            case .orphan: counts[t].orphan += 1
            case .carved: counts[t].carved += 1
            }
        case .duplicate:
            counts[t].duplicates += 1
        case .rejected(let why):
            counts[t].toLostAndFound += 1
            try lose(page: page, cell: cell, rowid: rowid, values: values, reason: "\(schema.tables[t].name): \(why)")
        }
    }

    func lose(page: UInt32, cell: Int, rowid: Int64?, values: [SQLValue], reason: String) throws {
        lostRows += 1
        try sink?.lost(page: page, cell: cell, rowid: rowid, values: values, reason: reason)
    }

    func shape(_ t: Int) -> SalvageSchema.Table { t == Salvager.schemaTable ? Salvager.schemaShape : schema.tables[t] }

    func isFree(_ page: UInt32) -> Bool { page >= 1 && page <= pageCount && claimed[Int(page)] == 0 }

    /// Walks table `t`'s b-tree from `page`, whose keys lie in (low, high].
    func walkTable(_ t: Int, page: UInt32, low: Int64?, high: Int64?, depth: Int) throws {
        let name = shape(t).name
        guard depth < Salvager.maxDepth else {
            problem("\(name): b-tree deeper than \(Salvager.maxDepth) at page \(page) (a loop)")
            return hole(t, low, high)
        }
        guard page >= 1, page <= pageCount else {
            problem("\(name): page \(page) is outside the file (\(pageCount) pages)")
            return hole(t, low, high)
        }
        guard isFree(page) else {
            problem("\(name): page \(page) is reached twice")
            return hole(t, low, high)
        }
        guard let bytes = source.page(page) else {
            problem("\(name): page \(page) cannot be read")
            return hole(t, low, high)
        }
        guard let btree = BTreePage(number: page, bytes: bytes, usableSize: usableSize), btree.kind.isTable else {
            problem("\(name): page \(page) is not a table b-tree page")
            hole(t, low, high)
            return try carveReached(t, page: page, bytes: bytes, low: low, high: high)
        }
        if btree.kind == .tableInterior {
            claimed[Int(page)] = 1
            var previous = low
            var ranges: [(UInt32, Int64?, Int64?)] = []
            // A lost cell's child is an orphan now: the range it covered, up to the next
            // good key, is a hole where the orphan scan may put its rows.
            var lost = false
            for i in 0..<btree.cellCount {
                guard let (child, key) = btree.tableInteriorCell(i) else {
                    problem("\(name): interior page \(page) cell \(i) is unreadable")
                    lost = true
                    continue
                }
                if let previous, key <= previous { problem("\(name): interior page \(page) keys out of order at cell \(i)"); lost = true; continue }
                if let high, key > high { problem("\(name): interior page \(page) key \(key) beyond its parent's bound \(high)"); lost = true; continue }
                if lost { hole(t, previous, key) }
                lost = false
                ranges.append((child, previous, key))
                previous = key
            }
            if lost { hole(t, previous, high) }
            ranges.append((btree.rightChild, previous, high))
            for (child, lo, hi) in ranges { try walkTable(t, page: child, low: lo, high: hi, depth: depth + 1) }
            return
        }
        try readLeaf(t, btree, low: low, high: high)
    }

    /// The rows of a table leaf reached from its parent.
    func readLeaf(_ t: Int, _ btree: BTreePage, low: Int64?, high: Int64?) throws {
        let table = shape(t)
        var rows: [(cell: Int, rowid: Int64, values: [SQLValue], overflow: [UInt32])] = []
        var failed = 0
        var unreadable: [Int] = []
        for i in 0..<btree.cellCount {
            guard let offset = btree.cellOffset(i), let cell = LocalPayload.tableLeafCell(btree.bytes, at: offset, usableSize: usableSize),
                  let (payload, overflow) = payloads.read(cell), overflow.allSatisfy(isFree),
                  let values = Record.decode(payload), SalvageSchema.fit(values, table).allowed else {
                unreadable.append(i)
                continue
            }
            rows.append((i, cell.rowid, values, overflow))
        }
        // Fewer than half its cells are this table's rows: another table's page, put here
        // by damage (pages swapped), or a page too damaged to trust here. The orphan scan
        // reads it, and the hole this leaves takes its rows if they are this table's.
        if rows.count * 2 < btree.cellCount {
            problem("\(table.name): leaf page \(btree.number): \(btree.cellCount - rows.count) of \(btree.cellCount) cells are not rows of this table")
            hole(t, low, high)
            return
        }
        // On a page that is this table's, a cell that does not add up may be bit rot in a
        // length: mend it when it then fits.
        for i in unreadable {
            if let offset = btree.cellOffset(i), let (rowid, values) = mendedCell(btree.bytes, at: offset, table) {
                problem("\(table.name): page \(btree.number) cell \(i): a damaged length mended (rowid \(rowid)); check its values")
                rows.append((i, rowid, values, []))
            } else {
                failed += 1
            }
        }
        rows.sort { $0.cell < $1.cell }
        // Rows that fit this table only loosely and another one exactly belong to the other:
        // a page put here by damage (pages swapped).
        if t != Salvager.schemaTable, !rows.isEmpty, !rows.allSatisfy({ SalvageSchema.fit($0.values, table).natural }),
           let other = schema.tables.firstIndex(where: { o in o.name != table.name && !o.withoutRowid && rows.allSatisfy { SalvageSchema.fit($0.values, o).natural } }) {
            problem("\(table.name): leaf page \(btree.number) holds rows of \(schema.tables[other].name)")
            hole(t, low, high)
            return
        }
        claimed[Int(btree.number)] = 1
        // A page whose rowids all lie outside its parent's range was put here by damage
        // (pages swapped): its rows are real, only its place is wrong.
        let inRange = rows.filter { r in (low.map { r.rowid > $0 } ?? true) && (high.map { r.rowid <= $0 } ?? true) }.count
        let misplaced = !rows.isEmpty && inRange * 2 < rows.count
        if misplaced { problem("\(table.name): leaf page \(btree.number) holds rowids outside its parent's range") }
        let ordered = Salvager.increasingRun(rows.map(\.rowid))
        func withinParent(_ rowid: Int64) -> Bool { misplaced || ((low.map { rowid > $0 } ?? true) && (high.map { rowid <= $0 } ?? true)) }
        // A key is trusted when it is in order with the page's other keys and in the range
        // its parent gives the page.
        let trusted = Set(rows.indices.filter { ordered.contains($0) && withinParent(rows[$0].rowid) })
        for (k, row) in rows.enumerated() {
            for page in row.overflow { claimed[Int(page)] = 2 }
            let outOfRange = !withinParent(row.rowid)
            let outOfOrder = !ordered.contains(k)
            if outOfOrder || outOfRange {
                let before = (0..<k).last { trusted.contains($0) }.map { rows[$0].rowid } ?? low
                let after = (k + 1..<rows.count).first { trusted.contains($0) }.map { rows[$0].rowid } ?? high.map { $0 + 1 }
                if let mended = Salvager.mendedRowid(row.rowid, after: before, before: after, taken: Set(rows.map(\.rowid))) {
                    problem("\(table.name): page \(btree.number) cell \(row.cell): rowid \(row.rowid) out of order, mended to \(mended) (one bit)")
                    pending.append((t, btree.number, row.cell, mended, row.values, .tree))
                    continue
                }
            }
            if outOfRange || outOfOrder {
                problem("\(table.name): page \(btree.number) cell \(row.cell): rowid \(row.rowid) is out of order (damaged key)")
                if t != Salvager.schemaTable {
                    counts[t].toLostAndFound += 1
                    try lose(page: btree.number, cell: row.cell, rowid: row.rowid, values: row.values, reason: "\(table.name): rowid out of order")
                }
                continue
            }
            pending.append((t, btree.number, row.cell, row.rowid, row.values, .tree))
        }
        if failed > 0 {
            problem("\(table.name): leaf page \(btree.number): \(failed) of \(btree.cellCount) cells unreadable")
            carve(t, page: btree.number, bytes: btree.bytes, low: low, high: high, skipping: Set(rows.map(\.rowid)))
        }
        if pending.count > 4096 { try flushPending() }
    }

    /// A cell on a page that is otherwise sound, whose record does not add up: one flipped
    /// bit in its payload size or in one serial type (scattered bit rot). The record's own
    /// header says how long it is; or one bit of one serial type, flipped back, makes it fill
    /// the payload exactly with values of the table's natural types. Only records that stay
    /// on the page are mended. Nil when neither works.
    func mendedCell(_ bytes: [UInt8], at offset: Int, _ table: SalvageSchema.Table) -> (Int64, [SQLValue])? {
        let end = min(usableSize, bytes.count)
        guard let (size, n1) = Varint.read(bytes, at: offset, end: end), let (rowid, n2) = Varint.read(bytes, at: offset + n1, end: end),
              offset + n1 + n2 < end else { return nil }
        let start = offset + n1 + n2
        let local = Array(bytes[start..<end])
        let maxLocal = usableSize - 35
        // The payload size is damaged: the header's own length, if it fits.
        if let (types, length) = Record.measure(local), length <= maxLocal, !types.isEmpty,
           let headerLength = Varint.read(local, at: 0).map({ Int($0.value) }),
           let values = Record.decode(Array(local[0..<length]), types: types, headerLength: headerLength),
           SalvageSchema.fit(values, table).natural, Int64(length) != size {
            return (rowid, values)
        }
        // One bit of the record's header is damaged (a serial type, a varint's continuation
        // bit, the header's length): flip each bit of it back, and keep the first way that
        // fills the payload with values of the table's natural types.
        guard size > 0, size <= Int64(maxLocal), Int(size) <= local.count else { return nil }
        var payload = Array(local[0..<Int(size)])
        for position in 0..<min(payload.count, 2 + 9 * table.columns.count) {
            for bit in 0..<8 {
                payload[position] ^= 1 << bit
                defer { payload[position] ^= 1 << bit }
                if let values = Record.decode(payload), SalvageSchema.fit(values, table).natural { return (rowid, values) }
            }
        }
        return nil
    }

    /// The rowid a damaged key had: the one value between its neighbours' keys, one bit away
    /// from it, that no other cell of the page has. Nil when there is not exactly one.
    static func mendedRowid(_ bad: Int64, after low: Int64?, before high: Int64?, taken: Set<Int64>) -> Int64? {
        let candidates = (0..<63).map { bad ^ (1 << Int64($0)) }.filter { r in
            (low.map { r > $0 } ?? true) && (high.map { r < $0 } ?? true) && !taken.contains(r)
        }
        return candidates.count == 1 ? candidates[0] : nil
    }

    /// The positions of a longest strictly increasing run of `keys` (not necessarily
    /// adjacent): a leaf's cells are in rowid order, so a key outside it was damaged.
    static func increasingRun(_ keys: [Int64]) -> Set<Int> {
        guard keys.count > 1 else { return Set(keys.indices) }
        var tails: [Int] = []          // index of the smallest tail of each length
        var previous = [Int](repeating: -1, count: keys.count)
        for (i, key) in keys.enumerated() {
            var lo = 0, hi = tails.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if keys[tails[mid]] < key { lo = mid + 1 } else { hi = mid }
            }
            if lo > 0 { previous[i] = tails[lo - 1] }
            if lo == tails.count { tails.append(i) } else { tails[lo] = i }
        }
        var run: Set<Int> = []
        var i = tails.last!
        while i >= 0 {
            run.insert(i)
            i = previous[i]
        }
        return run
    }

    /// A page reached from its parent that is not a table page: its header or cell pointers
    /// may be destroyed while its cells are intact. Carves it as a page of table `t`.
    func carveReached(_ t: Int, page: UInt32, bytes: [UInt8], low: Int64?, high: Int64?) throws {
        // An index page or another b-tree's interior page is not carved here: the orphan
        // scan reads it for what it is.
        if let other = BTreePage(number: page, bytes: bytes, usableSize: usableSize), other.cellCount > 0 { return }
        if carve(t, page: page, bytes: bytes, low: low, high: high, skipping: []) > 0 { claimed[Int(page)] = 1 }
    }

    func hole(_ t: Int, _ low: Int64?, _ high: Int64?) {
        if t != Salvager.schemaTable { holes.append(Hole(table: t, low: low, high: high)) }
    }

    /// Scans `bytes` for well-formed table-leaf cells of table `t` with rowids in
    /// (low, high], as SQLite's recovery extension does when a page's header is gone.
    @discardableResult
    func carve(_ t: Int, page: UInt32, bytes: [UInt8], low: Int64?, high: Int64?, skipping: Set<Int64>) -> Int {
        let table = shape(t)
        let found = carveCells(bytes, page: page) { rowid, values in
            (low.map { rowid > $0 } ?? true) && (high.map { rowid <= $0 } ?? true) && SalvageSchema.fit(values, table).allowed
        }
        var taken = 0
        for cell in found where !skipping.contains(cell.rowid) {
            for overflow in cell.overflow { claimed[Int(overflow)] = 2 }
            pending.append((t, page, cell.offset, cell.rowid, cell.values, .carved))
            taken += 1
        }
        if taken > 0 { pagesCarved += 1 }
        return taken
    }

    struct CarvedCell {
        var offset: Int
        var length = 0
        var rowid: Int64
        var values: [SQLValue]
        var overflow: [UInt32]
    }

    /// Well-formed cells anywhere in `bytes` that `accept` takes, left to right, never
    /// overlapping.
    func carveCells(_ bytes: [UInt8], page: UInt32, accept: (Int64, [SQLValue]) -> Bool) -> [CarvedCell] {
        var found: [CarvedCell] = []
        var offset = page == 1 ? DatabaseHeader.size : 0
        let end = min(usableSize, bytes.count)
        while offset < end - 3 {
            if bytes[offset] != 0, let cell = LocalPayload.tableLeafCell(bytes, at: offset, usableSize: end), cell.payloadSize >= 2,
               let header = Record.header(cell.local, size: cell.payloadSize), !header.types.isEmpty,
               cell.firstOverflow == 0 || isFree(cell.firstOverflow),
               let (payload, overflow) = payloads.read(cell), overflow.allSatisfy(isFree),
               let values = Record.decode(payload), values.allSatisfy(plausibleText), accept(cell.rowid, values) {
                found.append(CarvedCell(offset: offset, length: cell.cellLength, rowid: cell.rowid, values: values, overflow: overflow))
                offset += cell.cellLength
                continue
            }
            offset += 1
        }
        // A leaf's cells lie side by side from the end of the page: a real one touches
        // another or the page's end. One that stands alone is most likely bytes that happen
        // to parse (random data, the inside of a value), and is not trusted.
        let starts = Set(found.map(\.offset)), ends = Set(found.map { $0.offset + $0.length })
        return found.filter { cell in
            cell.offset + cell.length >= end || starts.contains(cell.offset + cell.length) || ends.contains(cell.offset)
        }
    }

    /// A carved value's text must read as text: well-formed UTF-8 without NUL bytes (in a
    /// UTF-8 database). Bytes cut out of the middle of other data rarely are.
    func plausibleText(_ value: SQLValue) -> Bool {
        guard case .text(let bytes) = value, utf8 else { return true }
        guard !bytes.contains(0) else { return false }
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// Claims the pages of an index b-tree (and their overflow pages), so that the orphan
    /// scan leaves them alone. Its entries are not needed: indexes are built again.
    func walkIndex(_ page: UInt32, depth: Int, name: String) {
        guard depth < Salvager.maxDepth, page >= 2, page <= pageCount, isFree(page), let bytes = source.page(page),
              let btree = BTreePage(number: page, bytes: bytes, usableSize: usableSize), !btree.kind.isTable else {
            problem("\(name): index page \(page) is unreadable, reached twice or not an index page")
            return
        }
        claimed[Int(page)] = 1
        for i in 0..<btree.cellCount {
            guard let offset = btree.cellOffset(i),
                  let cell = LocalPayload.indexCell(btree.bytes, at: btree.kind.isLeaf ? offset : offset + 4, usableSize: usableSize) else { continue }
            if cell.firstOverflow != 0, let (_, overflow) = payloads.read(cell), overflow.allSatisfy(isFree) {
                for page in overflow { claimed[Int(page)] = 2 }
            }
        }
        for child in btree.children { walkIndex(child, depth: depth + 1, name: name) }
    }

    // MARK: - Pages nobody reached

    /// Table-leaf pages that no b-tree reached (their parent is lost), then pages with no
    /// b-tree header at all, carved. Each page's rows go to the one table they fit, where
    /// that is unambiguous, else to lost_and_found.
    func scanOrphans(skipping free: Set<UInt32>) throws {
        guard !schema.tables.isEmpty, pageCount >= 2 else { return }
        var unparsed: [UInt32] = []
        for page in UInt32(2)...pageCount where claimed[Int(page)] == 0 && !free.contains(page) {
            guard let bytes = source.page(page), bytes.contains(where: { $0 != 0 }) else { continue }
            guard let btree = BTreePage(number: page, bytes: bytes, usableSize: usableSize) else {
                unparsed.append(page)
                continue
            }
            guard btree.kind == .tableLeaf else { continue }
            var cells: [CarvedCell] = []
            var failed = 0
            for i in 0..<btree.cellCount {
                guard let offset = btree.cellOffset(i), let cell = LocalPayload.tableLeafCell(bytes, at: offset, usableSize: usableSize),
                      let (payload, overflow) = payloads.read(cell), overflow.allSatisfy(isFree), let values = Record.decode(payload) else {
                    failed += 1
                    continue
                }
                cells.append(CarvedCell(offset: i, rowid: cell.rowid, values: values, overflow: overflow))
            }
            if failed > 0 {
                let known = Set(cells.map(\.rowid))
                cells += carveCells(bytes, page: page) { rowid, values in
                    !known.contains(rowid) && self.schema.tables.contains { SalvageSchema.fit(values, $0).allowed }
                }
            }
            try attribute(page, cells, source: failed > 0 ? .carved : .orphan)
        }
        for page in unparsed where claimed[Int(page)] == 0 {
            guard let bytes = source.page(page) else { continue }
            let cells = carveCells(bytes, page: page) { _, values in self.schema.tables.contains { SalvageSchema.fit(values, $0).allowed } }
            if !cells.isEmpty { pagesCarved += 1 }
            try attribute(page, cells, source: .carved)
        }
    }

    /// Gives the rows of one orphan page to the table they all fit, preferring a table with
    /// a hole where their rowids fall, then the one whose affinities they match best.
    func attribute(_ page: UInt32, _ cells: [CarvedCell], source: SalvageRowSource) throws {
        guard !cells.isEmpty else { return }
        let rowids = cells.map(\.rowid)
        let low = rowids.min()!, high = rowids.max()!
        var best: [Int] = []
        var bestFitting = 0
        for (t, table) in schema.tables.enumerated() where !table.withoutRowid {
            let fitting = cells.filter { SalvageSchema.fit($0.values, table).allowed }.count
            if fitting > bestFitting { best = [t]; bestFitting = fitting } else if fitting == bestFitting, fitting > 0 { best.append(t) }
        }
        // Only a table that lost pages where these rowids belong can take them: rows found
        // anywhere else would be invented.
        let inHole = best.filter { t in holes.contains { $0.table == t && $0.covers(low, high) } }
        let pool = freelistSet.contains(page) ? best : inHole
        var chosen: Int?
        if pool.count == 1 { chosen = pool[0] }
        else if pool.count > 1 {
            let natural = pool.map { t in cells.filter { SalvageSchema.fit($0.values, schema.tables[t]).natural }.count }
            let top = natural.max() ?? 0
            if top > 0, natural.filter({ $0 == top }).count == 1 { chosen = pool[natural.firstIndex(of: top)!] }
        }
        claimed[Int(page)] = 1
        guard let t = chosen else {
            orphanPagesLost += 1
            problem("page \(page): \(cells.count) rows that no b-tree reached fit no single table missing them: kept in lost_and_found")
            for cell in cells { try lose(page: page, cell: cell.offset, rowid: cell.rowid, values: cell.values, reason: "no single table fits") }
            return
        }
        orphanPagesAttributed += 1
        for cell in cells {
            for overflow in cell.overflow { claimed[Int(overflow)] = 2 }
            if SalvageSchema.fit(cell.values, schema.tables[t]).allowed {
                try emit(t, page: page, cell: cell.offset, rowid: cell.rowid, values: cell.values, source: source)
            } else {
                try lose(page: page, cell: cell.offset, rowid: cell.rowid, values: cell.values, reason: "does not fit \(schema.tables[t].name)")
            }
        }
    }
}
