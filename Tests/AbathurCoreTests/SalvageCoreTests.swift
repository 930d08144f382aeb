@testable import AbathurCore
import Foundation
import XCTest

/// The file-format reader and the salvage engine on real SQLite files read into memory:
/// what SQLite wrote is what the reader must find, and damage must never crash it, loop, or
/// invent a row.
final class SalvageCoreTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "salvage-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Collects what the salvage finds, as the writer would store it (first rowid wins).
    final class Collector: SalvageSink {
        var rows: [Int: [Int64: [SQLValue]]] = [:]
        var lost: [(rowid: Int64?, values: [SQLValue])] = []
        func insert(table: Int, rowid: Int64, values: [SQLValue]) throws -> InsertResult {
            if rows[table]?[rowid] != nil { return .duplicate }
            rows[table, default: [:]][rowid] = values
            return .inserted
        }
        func lost(page: UInt32, cell: Int, rowid: Int64?, values: [SQLValue], reason: String) throws {
            lost.append((rowid, values))
        }
    }

    /// A rollback-journal database with `sql` run in it, as bytes.
    func database(_ sql: String, pageSize: Int = 1024) throws -> [UInt8] {
        let path = dir + "/\(UUID().uuidString).db"
        FileManager.default.createFile(atPath: path, contents: Data())
        do {
            let connection = try Connection(path: path, mode: .readWrite)
            try connection.execute("PRAGMA page_size=\(pageSize); \(sql)")
        }
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The salvage of `bytes`: the schema from page 1 (or `schema`), then every row.
    func salvage(_ bytes: [UInt8], pageSize: Int = 1024, schema given: SalvageSchema? = nil, includeFreelist: Bool = false)
        throws -> (Salvager, SalvageSchema, Collector) {
        let source = MemoryPageSource(bytes: bytes, pageSize: pageSize)
        let salvager = Salvager(source: source, usableSize: pageSize)
        let schema = given ?? SalvageSchema.from(rows: salvager.readSchemaRows())
        let sink = Collector()
        let trunk = bytes.count >= 36 ? UInt32(bytes[32]) << 24 | UInt32(bytes[33]) << 16 | UInt32(bytes[34]) << 8 | UInt32(bytes[35]) : 0
        try salvager.run(schema: schema, firstFreelistTrunk: trunk, includeFreelist: includeFreelist, sink: sink)
        return (salvager, schema, sink)
    }

    func text(_ s: String) -> SQLValue { .text(Array(s.utf8)) }

    static let twoTables = """
        CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, score REAL);
        CREATE TABLE tags(name TEXT NOT NULL, weight INTEGER NOT NULL, note_id INTEGER);
        CREATE INDEX tags_name ON tags(name);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
        INSERT INTO notes SELECT i, 'note ' || i, 'body of note ' || i || ' ' || hex(randomblob(20)), i / 4.0 FROM n;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
        INSERT INTO tags SELECT 'tag-' || (i % 37), i, i FROM n;
        """

    func testVarintsReadAsSQLiteWritesThem() {
        XCTAssertEqual(Varint.read([0x05], at: 0)?.value, 5)
        XCTAssertEqual(Varint.read([0x81, 0x00], at: 0)?.value, 128)
        XCTAssertEqual(Varint.read([0x81, 0x00], at: 0)?.length, 2)
        let nine = [UInt8](repeating: 0xFF, count: 9)
        XCTAssertEqual(Varint.read(nine, at: 0)?.value, -1, "the ninth byte contributes all eight bits")
        XCTAssertEqual(Varint.read(nine, at: 0)?.length, 9)
        XCTAssertNil(Varint.read([0x81, 0x82], at: 0), "a varint that runs off the end is no varint")
        XCTAssertNil(Varint.read([0x81, 0x02], at: 0, end: 1))
    }

    func testRecordsDecodeEveryStorageClassAndRejectMalformedHeaders() {
        // header: size 6; types: NULL, int8, 8 (zero), real, text(2), blob(1)
        let record: [UInt8] = [7, 0, 1, 8, 7, 17, 14] + [0xFE] + [0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18] + Array("hi".utf8) + [0xAB]
        XCTAssertEqual(Record.decode(record), [.null, .integer(-2), .integer(0), .real(3.141592653589793), text("hi"), .blob([0xAB])])
        XCTAssertNil(Record.decode(Array(record.dropLast())), "values must fill the payload exactly")
        XCTAssertNil(Record.decode(record + [0]), "no slack after the values")
        XCTAssertNil(Record.decode([2, 10]), "serial types 10 and 11 are reserved")
        XCTAssertNil(Record.decode([9, 1]), "a header longer than the record")
    }

    func testAnUndamagedDatabaseGivesBackEveryRowWithItsRowid() throws {
        let bytes = try database(Self.twoTables)
        let (salvager, schema, sink) = try salvage(bytes)
        XCTAssertEqual(schema.tables.map(\.name), ["notes", "tags"])
        XCTAssertEqual(schema.tables[0].rowidAlias, 0, "id INTEGER PRIMARY KEY is the rowid")
        XCTAssertEqual(schema.indexes.map(\.name), ["tags_name"])
        XCTAssertEqual(sink.rows[0]?.count, 2000)
        XCTAssertEqual(sink.rows[1]?.count, 1500)
        XCTAssertEqual(sink.rows[0]?[7], [.null, text("note 7"), sink.rows[0]![7]![2], .real(1.75)])
        XCTAssertEqual(sink.rows[1]?[1500], [text("tag-20"), .integer(1500), .integer(1500)])
        XCTAssertEqual(salvager.problemCount, 0)
        XCTAssertTrue(sink.lost.isEmpty)
    }

    func testOverflowChainsAreFollowedAndALoopInOneEndsIt() throws {
        var bytes = try database("""
            CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT);
            INSERT INTO big VALUES (1, 'small'), (2, printf('%.5000c', 'x')), (3, 'after');
            """)
        var (_, _, sink) = try salvage(bytes)
        XCTAssertEqual(sink.rows[0]?[2], [.null, .text([UInt8](repeating: UInt8(ascii: "x"), count: 5000))])
        // Point the second overflow page back at the first: a loop.
        let source = MemoryPageSource(bytes: bytes, pageSize: 1024)
        let overflow = (2...source.pageCount).filter { p in
            let page = source.page(p)!
            return BTreePage(number: p, bytes: page, usableSize: 1024) == nil && page.contains(UInt8(ascii: "x"))
        }
        XCTAssertGreaterThan(overflow.count, 2)
        let second = Int(overflow[1] - 1) * 1024
        bytes[second..<second + 4] = [0, 0, 0, UInt8(overflow[0])][...]
        (_, _, sink) = try salvage(bytes)
        XCTAssertNil(sink.rows[0]?[2], "a looping chain gives no row rather than a wrong one")
        XCTAssertEqual(sink.rows[0]?[1], [.null, text("small")])
        XCTAssertEqual(sink.rows[0]?[3], [.null, text("after")])
    }

    func testAZeroedInteriorPageLeavesLeavesThatAreFoundAndGivenBackToTheirTable() throws {
        var bytes = try database(Self.twoTables)
        let source = MemoryPageSource(bytes: bytes, pageSize: 1024)
        let (_, schema, _) = try salvage(bytes)
        // The notes table's root is an interior page with leaves under it.
        let root = Int(schema.tables[0].rootPage)
        XCTAssertEqual(BTreePage(number: UInt32(root), bytes: source.page(UInt32(root))!, usableSize: 1024)?.kind, .tableInterior)
        let interiors = (2...source.pageCount).filter { p in
            p != UInt32(root) && BTreePage(number: p, bytes: source.page(p)!, usableSize: 1024)?.kind == .tableInterior
        }
        // Zero the root: every leaf of notes is an orphan, and the whole key range a hole.
        bytes.replaceSubrange((root - 1) * 1024..<root * 1024, with: [UInt8](repeating: 0, count: 1024))
        for p in interiors { let o = Int(p - 1) * 1024; bytes.replaceSubrange(o..<o + 1024, with: [UInt8](repeating: 0, count: 1024)) }
        let (salvager, _, sink) = try salvage(bytes)
        XCTAssertEqual(sink.rows[0]?.count, 2000, "every leaf of notes is still there: found and attributed")
        XCTAssertEqual(sink.rows[1]?.count, 1500)
        XCTAssertTrue(sink.lost.isEmpty)
        XCTAssertGreaterThan(salvager.orphanPagesAttributed, 0)
    }

    func testAPageWithItsHeaderDestroyedIsCarvedForItsCells() throws {
        var bytes = try database(Self.twoTables)
        let source = MemoryPageSource(bytes: bytes, pageSize: 1024)
        let leaf = (2...source.pageCount).first { p in
            guard let page = BTreePage(number: p, bytes: source.page(p)!, usableSize: 1024), page.kind == .tableLeaf else { return false }
            return page.cellCount > 3 && LocalPayload.tableLeafCell(page.bytes, at: page.cellOffset(0)!, usableSize: 1024).map { $0.rowid > 100 } == true
        }!
        let page = BTreePage(number: leaf, bytes: source.page(leaf)!, usableSize: 1024)!
        let rowids = (0..<page.cellCount).compactMap { LocalPayload.tableLeafCell(page.bytes, at: page.cellOffset($0)!, usableSize: 1024)?.rowid }
        // Text over the header and the cell-pointer array.
        let o = Int(leaf - 1) * 1024
        let junk = Array("The quick brown fox jumps over the lazy dog. ".utf8)
        for i in 0..<(8 + 2 * page.cellCount) { bytes[o + i] = junk[i % junk.count] }
        let (salvager, _, sink) = try salvage(bytes)
        let table = rowids.first! <= 2000 && sink.rows[0]?[rowids.first!] != nil ? 0 : 1
        for rowid in rowids { XCTAssertNotNil(sink.rows[table]?[rowid], "rowid \(rowid) carved back") }
        XCTAssertGreaterThan(salvager.pagesCarved, 0)
        XCTAssertEqual((sink.rows[0]?.count ?? 0) + (sink.rows[1]?.count ?? 0), 3500)
    }

    func testARowidOutOfOrderIsNotTrusted() {
        XCTAssertEqual(Salvager.increasingRun([1, 2, 3, 4]), [0, 1, 2, 3])
        XCTAssertEqual(Salvager.increasingRun([1, 2, 900, 4, 5]), [0, 1, 3, 4], "one damaged key stands out")
        XCTAssertEqual(Salvager.increasingRun([5]), [0])
        XCTAssertEqual(Salvager.increasingRun([]), [])
    }

    func testRowsOfTheWrongShapeAreRefused() throws {
        let schema = SalvageSchema.from(rows: [[text("table"), text("t"), text("t"), .integer(2),
                                                text("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER)")]])
        let table = schema.tables[0]
        XCTAssertTrue(SalvageSchema.fit([.null, text("a"), .integer(1)], table).natural)
        XCTAssertTrue(SalvageSchema.fit([.null, text("a")], table).allowed, "a row written before ADD COLUMN")
        XCTAssertFalse(SalvageSchema.fit([.integer(3), text("a"), .integer(1)], table).allowed, "the rowid alias is stored as NULL")
        XCTAssertFalse(SalvageSchema.fit([.null, .integer(5), .integer(1)], table).allowed, "TEXT affinity never stores a number")
        XCTAssertFalse(SalvageSchema.fit([.null, .null, .integer(1)], table).allowed, "NOT NULL")
        XCTAssertFalse(SalvageSchema.fit([.null, text("a"), text("b")], table).natural)
        XCTAssertFalse(SalvageSchema.fit([.null, text("a"), .integer(1), .integer(2)], table).allowed, "more values than columns")
    }

    func testDeletedRowsOnTheFreelistStayDeletedUnlessAskedFor() throws {
        let bytes = try database("""
            PRAGMA secure_delete=OFF;
            CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
            INSERT INTO t SELECT i, 'value ' || i FROM n;
            DELETE FROM t WHERE id > 1000;
            """)
        XCTAssertGreaterThan(bytes[36...39].reduce(0) { $0 << 8 | Int($1) }, 0, "the delete left freelist pages")
        let (plain, _, kept) = try salvage(bytes)
        XCTAssertEqual(kept.rows[0]?.count, 1000, "deleted rows do not come back")
        XCTAssertGreaterThan(plain.freelistPages, 0)
        let (_, _, all) = try salvage(bytes, includeFreelist: true)
        XCTAssertGreaterThan(all.rows[0]?.count ?? 0, 1500, "--include-freelist brings deleted rows back")
        XCTAssertTrue((all.rows[0] ?? [:]).keys.allSatisfy { $0 >= 1 && $0 <= 3000 })
    }

    func testAFreelistThatLoopsOrPointsAtLivePagesEnds() throws {
        let bytes = try database(Self.twoTables)
        let source = MemoryPageSource(bytes: bytes, pageSize: 1024)
        // Three pages: page 2 is a trunk naming page 3 next, and page 3 names page 2.
        let zeros = [UInt8](repeating: 0, count: 1020)
        let loop = MemoryPageSource(bytes: [UInt8](repeating: 0, count: 1024) + [0, 0, 0, 3] + zeros + [0, 0, 0, 2] + zeros, pageSize: 1024)
        let list = Freelist.read(from: loop, firstTrunk: 2, usableSize: 1024) { _ in false }
        XCTAssertEqual(list.trunks, [2, 3])
        XCTAssertFalse(list.problems.isEmpty, "the loop is named")
        let live = Freelist.read(from: source, firstTrunk: 2, usableSize: 1024) { $0 == 2 }
        XCTAssertTrue(live.trunks.isEmpty, "a live page is never read as a trunk")
    }

    func testTheSchemaComesFromTheManifestWhenPageOneIsGone() throws {
        var bytes = try database(Self.twoTables)
        let path = dir + "/m.db"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let inspection = try DatabaseCheck.run(path: path, options: DatabaseCheck.Options(quick: true, expectation: SchemaExpectation(tables: [], minIndexes: 0, indexes: [])))
        let schema = try XCTUnwrap(SalvageSchema.from(manifest: inspection.schema))
        XCTAssertEqual(schema.origin, .manifest)
        XCTAssertEqual(Set(schema.tables.map(\.name)), ["notes", "tags"])
        XCTAssertEqual(inspection.schema.columnCounts?["notes"], 4)
        bytes.replaceSubrange(0..<1024, with: [UInt8](repeating: 0, count: 1024))
        let (_, _, sink) = try salvage(bytes, schema: schema)
        let notes = schema.tables.firstIndex { $0.name == "notes" }!, tags = schema.tables.firstIndex { $0.name == "tags" }!
        XCTAssertEqual(sink.rows[notes]?.count, 2000)
        XCTAssertEqual(sink.rows[tags]?.count, 1500)
    }

    func testThePageSizeIsFoundFromThePagesWhenTheHeaderIsGone() throws {
        for size in [1024, 4096] {
            var bytes = try database(Self.twoTables, pageSize: size)
            bytes.replaceSubrange(0..<100, with: [UInt8](repeating: 0, count: 100))
            XCTAssertEqual(SalvageGeometry.probePageSize(bytes), size)
        }
    }

    func testEveryDamagedPageReaderInputEndsWithoutACrash() throws {
        // Every truncation point of a small database: each must end, and never invent a rowid.
        let bytes = try database(Self.twoTables)
        for cut in stride(from: 0, to: bytes.count, by: 997) {
            let (_, _, sink) = try salvage(Array(bytes.prefix(cut)))
            XCTAssertTrue((sink.rows[0] ?? [:]).keys.allSatisfy { $0 >= 1 && $0 <= 2000 })
            XCTAssertTrue((sink.rows[1] ?? [:]).keys.allSatisfy { $0 >= 1 && $0 <= 1500 })
        }
    }
}
