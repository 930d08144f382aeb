@testable import AbathurCore
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The file-format reader (Sources/AbathurCore/FileFormat) and the whole salvage engine
/// (`Salvager`) fed real SQLite databases damaged at random: bit flips, runs of random bytes,
/// zeroed sectors and pages, truncation, swapped and duplicated pages, and page numbers
/// written over child, overflow, freelist and cell pointers. Whatever the damage, nothing may
/// crash or loop, and what comes out must be sane.
///
/// Deterministic: every case is generated from a 64-bit seed (SplitMix64). `make check` runs
/// the fixed default seed and iteration count; `make fuzz` runs many more with a random seed.
///
///   ABATHUR_FUZZ_SEED=N         the run's seed (decimal or 0x hex); default 0x5EED_AB47_0013
///   ABATHUR_FUZZ_ITERATIONS=N   cases to run; default 1000 (under 10 s in a release build)
///   ABATHUR_FUZZ_CASE=N         run only the case with this seed (printed by a failure)
///   ABATHUR_FUZZ_CASE_TIMEOUT=S a case that runs longer than this is a loop; default 60
///
/// A failed assertion names its case's seed. A crash prints it on stderr from a signal
/// handler before the process dies, and a case that does not end prints it from a watchdog,
/// which then aborts the run.
final class PageReaderFuzzTests: XCTestCase {
    static let defaultSeed: UInt64 = 0x5EED_AB47_0013
    static let defaultIterations = 1000

    // MARK: - The fuzz

    func testReaderAndSalvagerSurviveRandomDamage() throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = try Self.number(environment["ABATHUR_FUZZ_SEED"], "ABATHUR_FUZZ_SEED") ?? Self.defaultSeed
        let iterations = Int(try Self.number(environment["ABATHUR_FUZZ_ITERATIONS"], "ABATHUR_FUZZ_ITERATIONS") ?? UInt64(Self.defaultIterations))
        let only = try Self.number(environment["ABATHUR_FUZZ_CASE"], "ABATHUR_FUZZ_CASE")
        let timeout = Double(try Self.number(environment["ABATHUR_FUZZ_CASE_TIMEOUT"], "ABATHUR_FUZZ_CASE_TIMEOUT") ?? 60)

        let bases = try [Self.makeBase(pageSize: 1024), Self.makeBase(pageSize: 512)]
        var master = SplitMix64(seed: seed)
        let cases = only.map { [$0] } ?? (0..<iterations).map { _ in master.next() }
        print(only.map { "PageReaderFuzzTests: the one case ABATHUR_FUZZ_CASE=\(Self.hex($0))" }
              ?? "PageReaderFuzzTests: seed \(Self.hex(seed)), \(cases.count) case(s); replay with ABATHUR_FUZZ_SEED=\(Self.hex(seed)) ABATHUR_FUZZ_ITERATIONS=\(cases.count)")

        // Each damaged file is written here for SalvageGeometry, which reads a path.
        let dir = NSTemporaryDirectory() + "fuzz-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let casePath = dir + "/case.db"

        let guardian = CaseGuard(timeout: timeout)
        guardian.start()
        defer { guardian.stop() }
        let started = Date()
        var tally = Tally()
        for (index, caseSeed) in cases.enumerated() {
            var rng = SplitMix64(seed: caseSeed)
            let replay = "replay with ABATHUR_FUZZ_CASE=\(Self.hex(caseSeed))\n"
            guardian.begin("PageReaderFuzzTests: case \(index + 1)/\(cases.count) seed \(Self.hex(caseSeed)), damaging the bytes\n" + replay)
            let base = bases[Int(rng.below(UInt64(bases.count)))]
            var bytes = base.bytes
            var applied: [String] = []
            for _ in 0...rng.below(5) { applied.append(Self.mutate(&bytes, pageSize: base.pageSize, &rng)) }
            let label = "case \(index + 1)/\(cases.count) seed \(Self.hex(caseSeed))\(only == nil ? " (run seed \(Self.hex(seed)))" : "") on the \(base.pageSize)-byte-page database: "
                + applied.joined(separator: "; ")
            guardian.begin("PageReaderFuzzTests: \(label)\n" + replay)
            // The page size, reserved bytes, freelist and auto-vacuum a salvage of this file
            // would use: from its header, or by the layout of its pages when the header is
            // damaged (no manifest here).
            try Data(bytes).write(to: URL(fileURLWithPath: casePath))
            let geometry = try SalvageGeometry.read(casePath, manifest: nil)
            XCTAssertTrue([512, 1024, 2048, 4096, 8192, 16384, 32768, 65536].contains(geometry.pageSize), "page size \(geometry.pageSize): \(label)")
            XCTAssertTrue(geometry.usableSize > 0 && geometry.usableSize <= geometry.pageSize, "usable size \(geometry.usableSize): \(label)")
            checkReader(bytes, geometry: geometry, rng: &rng, label: label, tally: &tally)
            try checkSalvager(bytes, geometry: geometry, base: base, rng: &rng, label: label, tally: &tally)
        }
        guardian.stop()
        print("PageReaderFuzzTests: \(cases.count) case(s) in \(String(format: "%.1f", Date().timeIntervalSince(started)))s: "
              + "\(tally.pages) pages parsed, \(tally.cells) cells, \(tally.records) records decoded, \(tally.overflowChains) overflow chains, "
              + "\(tally.salvaged) rows salvaged (\(tally.lost) to lost_and_found, widest \(tally.widestLost) values), \(tally.problems) problems counted")
        // The harness reached the parts it means to exercise; a fuzzer that parses nothing
        // proves nothing.
        if only == nil, cases.count >= 50 {
            XCTAssertGreaterThan(tally.pages, 0)
            XCTAssertGreaterThan(tally.records, 0)
            XCTAssertGreaterThan(tally.overflowChains, 0)
            XCTAssertGreaterThan(tally.salvaged, 0)
            XCTAssertGreaterThan(tally.problems, 0)
        }
    }

    /// The undamaged databases the fuzz starts from are read whole: every row of every rowid
    /// table, nothing lost, the freelist found. What the fuzz damages is read right when intact.
    func testUndamagedBasesAreReadWhole() throws {
        for base in try [Self.makeBase(pageSize: 1024), Self.makeBase(pageSize: 512)] {
            XCTAssertGreaterThan(base.freelistCount, 0, "the base has a freelist for the fuzz to damage")
            XCTAssertGreaterThan(base.overflowCells, 0, "the base has overflow chains for the fuzz to damage")
            let source = MemoryPageSource(bytes: base.bytes, pageSize: base.pageSize)
            let salvager = Salvager(source: source, usableSize: base.pageSize)
            let schema = SalvageSchema.from(rows: salvager.readSchemaRows())
            XCTAssertEqual(Set(schema.tables.map(\.name)), Set(base.rowCounts.keys).union(["state"]), "page size \(base.pageSize)")
            let sink = RecordingSink(schema: schema)
            try salvager.run(schema: schema, firstFreelistTrunk: base.firstFreelistTrunk, includeFreelist: false, sink: sink)
            for (t, table) in schema.tables.enumerated() where !table.withoutRowid {
                XCTAssertEqual(salvager.counts[t].tree, base.rowCounts[table.name], "\(table.name), page size \(base.pageSize): rows from the tree")
                XCTAssertEqual(salvager.counts[t].total, base.rowCounts[table.name], "\(table.name), page size \(base.pageSize): rows in all")
                XCTAssertEqual(sink.inserted[t].count, base.rowCounts[table.name], "\(table.name), page size \(base.pageSize)")
            }
            XCTAssertEqual(sink.lost.count, 0, "page size \(base.pageSize): \(salvager.problems)")
            XCTAssertEqual(salvager.lostRows, 0)
            XCTAssertEqual(salvager.freelistPages, base.freelistCount, "page size \(base.pageSize)")
            // A row whose body spills onto an overflow chain, value for value as SQLite wrote it.
            let tasks = try XCTUnwrap(schema.tables.firstIndex { $0.name == "tasks" })
            let row41 = try XCTUnwrap(sink.inserted[tasks][41], "tasks row 41")
            XCTAssertEqual(row41.count, 7)
            XCTAssertEqual(row41.first, .null, "the rowid alias is stored as NULL")
            XCTAssertEqual(row41[1], .text(Array("task 41".utf8)))
            XCTAssertEqual(row41[4], .text([UInt8](repeating: UInt8(ascii: "p"), count: 1441)), "the body, 1441 bytes over the overflow chain")
            XCTAssertEqual(row41[5], .blob(Array(String(format: "%08d", 41 * 7919).utf8)))
            XCTAssertEqual(row41[6], .real(10.25))
        }
    }

    // MARK: - The reader, piece by piece

    /// Every page through `BTreePage`, every cell through `LocalPayload`, `PayloadReader` and
    /// `Record`; varints at random places; the freelist from the header's first trunk and
    /// from a random page.
    func checkReader(_ bytes: [UInt8], geometry: SalvageGeometry, rng: inout SplitMix64, label: String, tally: inout Tally) {
        let (pageSize, usable) = (geometry.pageSize, geometry.usableSize)
        let source = MemoryPageSource(bytes: bytes, pageSize: pageSize)
        let pageCount = source.pageCount
        XCTAssertEqual(Int(pageCount), (bytes.count + pageSize - 1) / pageSize, label)
        let reader = PayloadReader(source: source, usableSize: usable)
        guard pageCount > 0 else {
            XCTAssertNil(source.page(1), label)
            return
        }
        XCTAssertNil(source.page(0), label)
        XCTAssertNil(source.page(pageCount + 1), label)
        for number in UInt32(1)...pageCount {
            guard let page = source.page(number) else { XCTFail("page \(number) of \(pageCount) is not given: \(label)"); continue }
            XCTAssertEqual(page.count, pageSize, label)
            // Varints anywhere, with and without an end.
            for _ in 0..<4 {
                let offset = Int(rng.below(UInt64(page.count + 2)))
                let end = rng.below(2) == 0 ? nil : Int(rng.below(UInt64(page.count + 16)))
                if let (_, length) = Varint.read(page, at: offset, end: end) {
                    XCTAssertTrue((1...9).contains(length), label)
                    XCTAssertLessThanOrEqual(offset + length, min(end ?? page.count, page.count), label)
                }
            }
            guard let btree = BTreePage(number: number, bytes: page, usableSize: usable) else { continue }
            tally.pages += 1
            let headerEnd = btree.headerOffset + (btree.kind.isLeaf ? 8 : 12)
            XCTAssertLessThanOrEqual(headerEnd + 2 * btree.cellCount, usable, label)
            let children = btree.children
            if btree.kind.isLeaf {
                XCTAssertEqual(children, [], label)
            } else {
                XCTAssertLessThanOrEqual(children.count, btree.cellCount + 1, label)
                XCTAssertEqual(children.last, btree.rightChild, label)
            }
            for i in 0..<btree.cellCount {
                guard let offset = btree.cellOffset(i) else { continue }
                XCTAssertTrue(offset >= headerEnd + 2 * btree.cellCount && offset < usable, label)
                tally.cells += 1
                switch btree.kind {
                case .tableInterior:
                    _ = btree.tableInteriorCell(i)
                case .tableLeaf:
                    if let cell = LocalPayload.tableLeafCell(page, at: offset, usableSize: usable) {
                        checkPayload(cell, at: offset, reader: reader, usable: usable, pageCount: pageCount, label: label, tally: &tally)
                    }
                case .indexLeaf, .indexInterior:
                    if btree.kind == .indexInterior { _ = btree.indexInteriorChild(i) }
                    let at = btree.kind.isLeaf ? offset : offset + 4
                    if let cell = LocalPayload.indexCell(page, at: at, usableSize: usable) {
                        checkPayload(cell, at: at, reader: reader, usable: usable, pageCount: pageCount, label: label, tally: &tally)
                    }
                }
            }
        }
        // A page carved byte by byte, as the salvage does when a page's header is gone: a
        // cell at every offset, and a record measured by its own header at every offset.
        if let page = source.page(UInt32(1 + rng.below(UInt64(pageCount)))) {
            // Every offset of a small page; 2048 of a large one (each costs up to a page).
            let offsets = usable <= 4096 ? Array(0..<usable) : (0..<2048).map { _ in Int(rng.below(UInt64(usable))) }
            for offset in offsets {
                if let cell = LocalPayload.tableLeafCell(page, at: offset, usableSize: usable) {
                    XCTAssertLessThanOrEqual(offset + cell.cellLength, usable, label)
                    if let header = Record.header(cell.local, size: cell.payloadSize) {
                        XCTAssertLessThanOrEqual(header.bodyStart, cell.local.count, label)
                    }
                }
                let rest = Array(page[offset..<usable])
                if let (types, length) = Record.measure(rest), let (headerLength, _) = Varint.read(rest, at: 0) {
                    XCTAssertLessThanOrEqual(length, rest.count, label)
                    XCTAssertEqual(Int(headerLength) + types.map { Record.contentSize(ofSerialType: $0)! }.reduce(0, +), length, label)
                    if let values = Record.decode(Array(rest[0..<length]), types: types, headerLength: Int(headerLength)) {
                        XCTAssertEqual(values.count, types.count, "more or fewer values than the record header allows: \(label)")
                        XCTAssertTrue(Record.decode(Array(rest[0..<length])).map { Self.same($0, values) } ?? false, "a record measured whole decodes alike: \(label)")
                    } else {
                        XCTFail("a record measured whole that does not decode: \(label)")
                    }
                }
            }
        }
        // The freelist, from the header's first trunk, from a random page, with and without
        // pages it must stop at.
        for start in [geometry.firstFreelistTrunk, UInt32(rng.below(UInt64(pageCount) + 2))] {
            let live = Set((0..<rng.below(8)).map { _ in UInt32(1 + rng.below(UInt64(pageCount))) })
            let list = Freelist.read(from: source, firstTrunk: start, usableSize: usable) { live.contains($0) }
            XCTAssertEqual(Set(list.trunks).count, list.trunks.count, "a trunk read twice: \(label)")
            XCTAssertTrue(list.trunks.allSatisfy { $0 >= 1 && $0 <= pageCount && !live.contains($0) }, label)
            XCTAssertTrue(list.leaves.allSatisfy { $0 >= 2 && $0 <= pageCount && !live.contains($0) }, label)
            XCTAssertLessThanOrEqual(list.leaves.count, list.trunks.count * max(0, usable / 4 - 2), label)
        }
    }

    /// One cell's payload, read whole, and its record.
    func checkPayload(_ cell: LocalPayload, at offset: Int, reader: PayloadReader, usable: Int, pageCount: UInt32, label: String, tally: inout Tally) {
        XCTAssertGreaterThanOrEqual(cell.payloadSize, 0, label)
        XCTAssertLessThanOrEqual(cell.local.count, cell.payloadSize, label)
        XCTAssertGreaterThan(cell.cellLength, 0, label)
        XCTAssertLessThanOrEqual(offset + cell.cellLength, usable, label)
        // A payload that fits has no overflow pointer (one that spills may have a zeroed one).
        if cell.local.count == cell.payloadSize { XCTAssertEqual(cell.firstOverflow, 0, label) }
        guard let (payload, overflow) = reader.read(cell) else { return }
        if !overflow.isEmpty { tally.overflowChains += 1 }
        XCTAssertEqual(payload.count, cell.payloadSize, label)
        XCTAssertEqual(Set(overflow).count, overflow.count, "an overflow page used twice in one chain: \(label)")
        XCTAssertTrue(overflow.allSatisfy { $0 >= 2 && $0 <= pageCount }, label)
        XCTAssertEqual(overflow.first ?? 0, cell.firstOverflow, label)
        XCTAssertEqual(overflow.count, (cell.payloadSize - cell.local.count + usable - 5) / (usable - 4), label)
        guard let header = Record.header(payload) else {
            XCTAssertNil(Record.decode(payload), label)
            return
        }
        XCTAssertLessThanOrEqual(header.bodyStart, payload.count, label)
        XCTAssertEqual(header.bodyStart + header.types.map { Record.contentSize(ofSerialType: $0)! }.reduce(0, +), payload.count, label)
        guard let values = Record.decode(payload) else { return XCTFail("a header that parses, a record that does not: \(label)") }
        tally.records += 1
        XCTAssertEqual(values.count, header.types.count, "more or fewer values than the record header allows: \(label)")
        for (value, type) in zip(values, header.types) {
            switch value {
            case .null: XCTAssertEqual(type, 0, label)
            case .integer(let v): XCTAssertTrue((1...6).contains(type) || (type == 8 && v == 0) || (type == 9 && v == 1), label)
            case .real: XCTAssertEqual(type, 7, label)
            case .text(let b): XCTAssertTrue(type >= 13 && type % 2 == 1 && b.count == Int((type - 13) / 2), label)
            case .blob(let b): XCTAssertTrue(type >= 12 && type % 2 == 0 && b.count == Int((type - 12) / 2), label)
            }
        }
    }

    // MARK: - The engine

    /// The whole salvage over the damaged bytes: the schema read from page 1 (or the intact
    /// one, as a manifest gives it when page 1 is gone), every table walked, the freelist,
    /// the orphan scan and the carving; rows to a sink that keeps them, or to none (a survey).
    func checkSalvager(_ bytes: [UInt8], geometry: SalvageGeometry, base: Base, rng: inout SplitMix64, label: String, tally: inout Tally) throws {
        let (pageSize, usable) = (geometry.pageSize, geometry.usableSize)
        let source = MemoryPageSource(bytes: bytes, pageSize: pageSize)
        // Now and then as if the header said auto-vacuum: pointer-map pages are set aside.
        let autoVacuum = geometry.autoVacuum || rng.below(6) == 0
        let salvager = Salvager(source: source, usableSize: usable, autoVacuum: autoVacuum)
        let schemaRows = salvager.readSchemaRows()
        for row in schemaRows { XCTAssertTrue((1...5).contains(row.count), "a schema row of \(row.count) values: \(label)") }
        let fromFile = rng.below(2) == 0
        let schema = SalvageSchema.from(rows: fromFile ? schemaRows : base.schemaRows)
        let sink = rng.below(3) == 0 ? nil : RecordingSink(schema: schema)
        let includeFreelist = rng.below(2) == 0
        XCTAssertNoThrow(try salvager.run(schema: schema, firstFreelistTrunk: geometry.firstFreelistTrunk, includeFreelist: includeFreelist, sink: sink), label)

        let context = "\(label) [schema from \(fromFile ? "the file" : "the intact base"), \(sink == nil ? "survey" : "sink"), freelist \(includeFreelist ? "included" : "skipped")\(autoVacuum ? ", auto-vacuum" : "")]"
        XCTAssertEqual(salvager.counts.count, schema.tables.count, context)
        for (t, counts) in salvager.counts.enumerated() {
            for (name, n) in [("tree", counts.tree), ("orphan", counts.orphan), ("carved", counts.carved),
                              ("duplicates", counts.duplicates), ("toLostAndFound", counts.toLostAndFound)] {
                XCTAssertGreaterThanOrEqual(n, 0, "\(schema.tables[t].name).\(name): \(context)")
            }
            if let sink { XCTAssertEqual(counts.total, sink.inserted[t].count, "\(schema.tables[t].name): rows counted against rows stored: \(context)") }
            tally.salvaged += counts.total
        }
        XCTAssertGreaterThanOrEqual(salvager.lostRows, 0, context)
        XCTAssertGreaterThanOrEqual(salvager.problemCount, salvager.problems.count, context)
        XCTAssertLessThanOrEqual(salvager.problems.count, 50, context)
        XCTAssertLessThanOrEqual(salvager.freelistPages, Int(source.pageCount), context)
        XCTAssertLessThanOrEqual(salvager.pagesCarved, Int(source.pageCount), context)
        XCTAssertLessThanOrEqual(salvager.orphanPagesAttributed + salvager.orphanPagesLost, Int(source.pageCount), context)
        tally.problems += salvager.problemCount
        tally.lost += salvager.lostRows
        guard let sink else { return }
        XCTAssertEqual(sink.lost.count, salvager.lostRows, context)
        for lost in sink.lost {
            XCTAssertTrue(lost.page >= 1 && lost.page <= source.pageCount, "lost_and_found row from page \(lost.page): \(context)")
            tally.widestLost = max(tally.widestLost, lost.values)
        }
        // Every stored row fits its table: no more values than it has columns, the rowid
        // alias stored as NULL; a rowid found again is counted as a duplicate.
        XCTAssertEqual(sink.outOfRange, [], "rows for tables the schema does not have: \(context)")
        XCTAssertEqual(salvager.counts.map(\.duplicates), sink.duplicates, "duplicates counted against duplicates refused: \(context)")
        for (t, rows) in sink.inserted.enumerated() {
            let table = schema.tables[t]
            XCTAssertFalse(table.withoutRowid && !rows.isEmpty, "\(table.name): rows of a WITHOUT ROWID table: \(context)")
            for (rowid, values) in rows {
                XCTAssertTrue(!values.isEmpty && values.count <= table.columns.count,
                              "\(table.name) rowid \(rowid): \(values.count) values for \(table.columns.count) columns: \(context)")
                if let alias = table.rowidAlias, alias < values.count { XCTAssertEqual(values[alias], .null, "\(table.name) rowid \(rowid): \(context)") }
            }
        }
    }

    // MARK: - Mutations

    /// Damages `bytes` in one of a dozen ways chosen by `rng`; returns what it did.
    static func mutate(_ bytes: inout [UInt8], pageSize: Int, _ rng: inout SplitMix64) -> String {
        let pages = (bytes.count + pageSize - 1) / pageSize
        guard !bytes.isEmpty else { return "nothing left to damage" }
        func randomPage() -> Int { Int(rng.below(UInt64(pages))) + 1 }
        /// A page number a pointer should never hold, or one it might: 0, page 1, out of
        /// range, a random page, a huge one.
        func nastyPage(_ near: Int) -> UInt32 {
            switch rng.below(7) {
            case 0: return 0
            case 1: return 1
            case 2: return UInt32(pages + 1 + Int(rng.below(3)))
            case 3: return UInt32.max - UInt32(rng.below(2))
            case 4: return UInt32(near)
            default: return UInt32(randomPage())
            }
        }
        func put32(_ value: UInt32, at offset: Int) {
            for k in 0..<4 where offset + k < bytes.count { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (24 - 8 * k)) }
        }
        /// The b-tree pages of the current bytes whose header parses, of the kinds wanted.
        func btreePages(_ kinds: Set<UInt8>) -> [Int] {
            (1...pages).filter { p in
                let o = (p - 1) * pageSize + (p == 1 ? 100 : 0)
                return o < bytes.count && kinds.contains(bytes[o])
            }
        }
        switch rng.below(14) {
        case 0:
            let n = 1 + Int(rng.below(32))
            for _ in 0..<n { bytes[Int(rng.below(UInt64(bytes.count)))] ^= 1 << UInt8(rng.below(8)) }
            return "\(n) bit flip(s)"
        case 1:
            let length = 1 + Int(rng.below(256))
            let at = min(bytes.count - 1, rng.below(3) == 0 ? (randomPage() - 1) * pageSize + Int(rng.below(12)) : Int(rng.below(UInt64(bytes.count))))
            for k in at..<min(bytes.count, at + length) { bytes[k] = UInt8(truncatingIfNeeded: rng.next()) }
            return "\(length) random bytes at \(at)"
        case 2:
            let sectors = 1 + Int(rng.below(4))
            let at = Int(rng.below(UInt64((bytes.count + 511) / 512))) * 512
            for k in at..<min(bytes.count, at + 512 * sectors) { bytes[k] = 0 }
            return "\(sectors) sector(s) zeroed at \(at)"
        case 3:
            let p = randomPage()
            for k in (p - 1) * pageSize..<min(bytes.count, p * pageSize) { bytes[k] = 0 }
            return "page \(p) zeroed"
        case 4:
            let length = rng.below(2) == 0 ? Int(rng.below(UInt64(pages))) * pageSize : Int(rng.below(UInt64(bytes.count)))
            bytes.removeLast(bytes.count - length)
            return "truncated to \(length) bytes"
        case 5:
            let (a, b) = (randomPage(), randomPage())
            guard a != b, a * pageSize <= bytes.count, b * pageSize <= bytes.count else { return "no pages swapped" }
            for k in 0..<pageSize { bytes.swapAt((a - 1) * pageSize + k, (b - 1) * pageSize + k) }
            return "pages \(a) and \(b) swapped"
        case 6:
            let (a, b) = (randomPage(), randomPage())
            guard a != b, a * pageSize <= bytes.count, b * pageSize <= bytes.count else { return "no page copied" }
            for k in 0..<pageSize { bytes[(b - 1) * pageSize + k] = bytes[(a - 1) * pageSize + k] }
            return "page \(a) copied over page \(b)"
        case 7, 8:
            // A child pointer of an interior page (a cell's or the right-most).
            let interior = btreePages([2, 5])
            guard let p = interior.isEmpty ? nil : interior[Int(rng.below(UInt64(interior.count)))] else { return "no interior page to point elsewhere" }
            let h = (p - 1) * pageSize + (p == 1 ? 100 : 0)
            guard h + 12 <= bytes.count else { return "no interior page to point elsewhere" }
            let cells = Int(bytes.bigEndianUInt16(at: h + 3))
            let value = nastyPage(p)
            if cells == 0 || rng.below(3) == 0 {
                put32(value, at: h + 8)
                return "page \(p): right child set to \(value)"
            }
            let i = Int(rng.below(UInt64(cells)))
            guard h + 12 + 2 * i + 2 <= bytes.count else { return "page \(p): cell pointer \(i) is past the end" }
            let cell = (p - 1) * pageSize + Int(bytes.bigEndianUInt16(at: h + 12 + 2 * i))
            guard cell + 4 <= bytes.count else { return "page \(p): cell \(i) is past the end" }
            put32(value, at: cell)
            return "page \(p): child of cell \(i) set to \(value)"
        case 9:
            // The first four bytes of a page: an overflow page's next link, a freelist trunk's.
            let p = randomPage()
            let value = nastyPage(p)
            put32(value, at: (p - 1) * pageSize)
            return "page \(p): first word (overflow or trunk link) set to \(value)"
        case 10:
            // An overflow pointer: the last four bytes of a leaf cell whose payload spills.
            let leaves = btreePages([13])
            guard let p = leaves.isEmpty ? nil : leaves[Int(rng.below(UInt64(leaves.count)))] else { return "no leaf for an overflow pointer" }
            let h = (p - 1) * pageSize + (p == 1 ? 100 : 0)
            guard h + 8 <= bytes.count else { return "no leaf for an overflow pointer" }
            let page = Array(bytes[(p - 1) * pageSize..<min(bytes.count, p * pageSize)]) + [UInt8](repeating: 0, count: max(0, p * pageSize - bytes.count))
            guard let btree = BTreePage(number: UInt32(p), bytes: page, usableSize: pageSize) else { return "page \(p) no longer parses" }
            for i in 0..<btree.cellCount {
                if let o = btree.cellOffset(i), let cell = LocalPayload.tableLeafCell(page, at: o, usableSize: pageSize), cell.firstOverflow != 0 {
                    let value = nastyPage(Int(cell.firstOverflow))
                    put32(value, at: (p - 1) * pageSize + o + cell.cellLength - 4)
                    return "page \(p) cell \(i): overflow pointer \(cell.firstOverflow) set to \(value)"
                }
            }
            let value = nastyPage(p)
            put32(value, at: (p - 1) * pageSize + Int(rng.below(UInt64(pageSize - 4))))
            return "page \(p) has no overflow cell: a random word set to \(value)"
        case 11:
            // Header fields: the freelist's first trunk and count, the page count, the
            // reserved bytes, the page size.
            guard bytes.count >= 100 else { return "no header left" }
            switch rng.below(5) {
            case 0: let v = nastyPage(0); put32(v, at: 32); return "header: first freelist trunk set to \(v)"
            case 1: let v = UInt32(truncatingIfNeeded: rng.next()); put32(v, at: 36); return "header: freelist count set to \(v)"
            case 2: let v = nastyPage(pages); put32(v, at: 28); return "header: page count set to \(v)"
            case 3: let v = UInt8(truncatingIfNeeded: rng.next()); bytes[20] = v; return "header: reserved bytes set to \(v)"
            default:
                let v: UInt16 = [256, 512, 1024, 2048, 4096, 1, 0, 65535][Int(rng.below(8))]
                bytes[16] = UInt8(v >> 8); bytes[17] = UInt8(v & 0xFF)
                return "header: page size field set to \(v)"
            }
        case 12:
            // A b-tree page's header: its cell count, a cell pointer, its content start.
            let trees = btreePages([2, 5, 10, 13])
            guard let p = trees.isEmpty ? nil : trees[Int(rng.below(UInt64(trees.count)))] else { return "no b-tree page left" }
            let h = (p - 1) * pageSize + (p == 1 ? 100 : 0)
            guard h + 12 <= bytes.count else { return "page \(p): header past the end" }
            switch rng.below(3) {
            case 0:
                let v: UInt16 = [0, 1, 0xFFFF, UInt16(pageSize / 2), UInt16(truncatingIfNeeded: rng.next())][Int(rng.below(5))]
                bytes[h + 3] = UInt8(v >> 8); bytes[h + 4] = UInt8(v & 0xFF)
                return "page \(p): cell count set to \(v)"
            case 1:
                let cells = Int(bytes.bigEndianUInt16(at: h + 3))
                let header = bytes[h] == 2 || bytes[h] == 5 ? 12 : 8
                let i = Int(rng.below(UInt64(max(1, cells))))
                guard h + header + 2 * i + 2 <= bytes.count else { return "page \(p): cell pointer past the end" }
                let v = UInt16(truncatingIfNeeded: rng.next()) % UInt16(pageSize)
                bytes[h + header + 2 * i] = UInt8(v >> 8); bytes[h + header + 2 * i + 1] = UInt8(v & 0xFF)
                return "page \(p): cell pointer \(i) set to \(v)"
            default:
                let v = UInt8([2, 5, 10, 13, 0, 0xFF][Int(rng.below(6))])
                bytes[h] = v
                return "page \(p): page type set to \(v)"
            }
        default:
            // Varints that never end or claim huge sizes, over a cell.
            let p = randomPage()
            let at = min(bytes.count - 1, (p - 1) * pageSize + Int(rng.below(UInt64(pageSize))))
            let length = 1 + Int(rng.below(12))
            for k in at..<min(bytes.count, at + length) { bytes[k] = rng.below(4) == 0 ? 0x7F : 0xFF }
            return "page \(p): \(length) varint byte(s) of 0xFF/0x7F at \(at - (p - 1) * pageSize)"
        }
    }

    // MARK: - The databases

    /// An undamaged database the fuzz starts from, and what SQLite says is in it.
    struct Base {
        var pageSize: Int
        var bytes: [UInt8]
        var schemaRows: [[SQLValue]]
        var rowCounts: [String: Int]
        var freelistCount: Int
        var firstFreelistTrunk: UInt32
        var overflowCells: Int
    }

    /// An abathur-like database written by SQLite: tables with a rowid alias, AUTOINCREMENT,
    /// a text primary key (an automatic index), a WITHOUT ROWID table, indexes, a view and a
    /// trigger; rows whose payloads spill onto overflow chains; deleted rows and a dropped
    /// table that leave a freelist. Deterministic: no random values.
    static func makeBase(pageSize: Int) throws -> Base {
        let dir = NSTemporaryDirectory() + "fuzz-base-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/base.db"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        var counts: [String: Int] = [:]
        do {
            let db = try Connection(path: path, mode: .readWrite)
            try db.execute("""
                PRAGMA page_size = \(pageSize);
                PRAGMA journal_mode = DELETE;
                PRAGMA user_version = 13;
                PRAGMA application_id = 1094861636;
                CREATE TABLE tasks(id INTEGER PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
                                   priority INTEGER, body TEXT, payload BLOB, score REAL);
                CREATE INDEX tasks_status ON tasks(status, priority);
                CREATE TABLE agents(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, task_id INTEGER REFERENCES tasks(id), seen REAL);
                CREATE TABLE audit(id INTEGER PRIMARY KEY, task_id INTEGER, event TEXT, at INTEGER NOT NULL);
                CREATE INDEX audit_task ON audit(task_id, at);
                CREATE TABLE memory_entries(key TEXT PRIMARY KEY, value TEXT, updated INTEGER);
                CREATE TABLE state(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
                CREATE TABLE scratch(id INTEGER PRIMARY KEY, junk TEXT);
                CREATE VIEW open_tasks AS SELECT id, title FROM tasks WHERE status != 'done';
                CREATE TRIGGER tasks_done AFTER UPDATE OF status ON tasks BEGIN
                    INSERT INTO audit(task_id, event, at) VALUES (new.id, 'status ' || new.status, 0);
                END;
                BEGIN;
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
                INSERT INTO tasks(id, title, status, priority, body, payload, score)
                SELECT i, 'task ' || i, CASE i % 3 WHEN 0 THEN 'done' WHEN 1 THEN 'pending' ELSE 'running' END, i % 7 - 3,
                       CASE WHEN i % 41 = 0 THEN replace(hex(zeroblob(1400 + i)), '00', char(97 + i % 26)) ELSE substr('lorem ipsum dolor sit amet consectetur adipiscing elit', 1, i % 50) END,
                       CASE WHEN i % 5 = 0 THEN NULL ELSE CAST(printf('%08d', i * 7919) AS BLOB) END,
                       CASE WHEN i % 4 = 0 THEN i ELSE i * 0.25 END
                FROM n;
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
                INSERT INTO agents(name, task_id, seen) SELECT 'agent-' || i, i * 7, i * 1.5 FROM n;
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
                INSERT INTO audit(id, task_id, event, at) SELECT i, i % 300 + 1, 'event ' || (i % 11), 1700000000 + i * 60 FROM n;
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80)
                INSERT INTO memory_entries(key, value, updated)
                SELECT 'memory/' || i, CASE WHEN i % 9 = 0 THEN replace(hex(zeroblob(700 + i * 3)), '00', 'mm') ELSE 'v' || i END, i FROM n;
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
                INSERT INTO state(key, value) SELECT 'key' || i, i * 3 FROM n;
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
                INSERT INTO scratch(id, junk) SELECT i, replace(hex(zeroblob(60)), '00', 'j') FROM n;
                COMMIT;
                UPDATE tasks SET status = 'done' WHERE id % 50 = 0;
                DELETE FROM audit WHERE id % 4 = 0;
                DELETE FROM tasks WHERE id BETWEEN 100 AND 140;
                DROP TABLE scratch;
                """)
            for table in ["tasks", "agents", "audit", "memory_entries", "sqlite_sequence"] {
                counts[table] = Int(try db.integer("SELECT count(*) FROM \(table)"))
            }
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let header = try DatabaseHeader(bytes: Array(bytes.prefix(DatabaseHeader.size)))
        XCTAssertEqual(header.pageSize, pageSize)
        XCTAssertEqual(bytes.count % pageSize, 0)
        let source = MemoryPageSource(bytes: bytes, pageSize: pageSize)
        let schemaRows = Salvager(source: source, usableSize: pageSize).readSchemaRows()
        // 6 tables (sqlite_sequence too), 4 indexes (2 automatic), a view, a trigger.
        XCTAssertEqual(schemaRows.count, 12, "the rows of sqlite_schema")
        // Cells whose payload spills onto overflow pages.
        var overflowCells = 0
        for number in UInt32(1)...source.pageCount {
            guard let page = source.page(number), let btree = BTreePage(number: number, bytes: page, usableSize: pageSize), btree.kind == .tableLeaf else { continue }
            for i in 0..<btree.cellCount {
                guard let o = btree.cellOffset(i), let cell = LocalPayload.tableLeafCell(page, at: o, usableSize: pageSize) else { continue }
                if cell.firstOverflow != 0 { overflowCells += 1 }
            }
        }
        return Base(pageSize: pageSize, bytes: bytes, schemaRows: schemaRows, rowCounts: counts,
                    freelistCount: Int(header.freelistCount), firstFreelistTrunk: header.firstFreelistTrunk, overflowCells: overflowCells)
    }

    // MARK: - Support

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// Values compared bit for bit (a NaN read from random bytes is not equal to itself).
    static func same(_ a: [SQLValue], _ b: [SQLValue]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in
            if case .real(let p) = x, case .real(let q) = y { return p.bitPattern == q.bitPattern }
            return x == y
        }
    }

    static func number(_ text: String?, _ name: String) throws -> UInt64? {
        guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        let value = text.lowercased().hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        guard let value else { throw BadSetting(description: "\(name)=\(text) is not a number (decimal, or hex with 0x)") }
        return value
    }

    struct BadSetting: Error, CustomStringConvertible { var description: String }

    struct Tally {
        var pages = 0, cells = 0, records = 0, overflowChains = 0
        var salvaged = 0, lost = 0, widestLost = 0, problems = 0
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny PRNG whose whole state is one 64-bit word,
/// so a case is replayed from its seed alone.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in 0..<n (n > 0).
    mutating func below(_ n: UInt64) -> UInt64 { n == 0 ? 0 : next() % n }
}

/// Keeps what a salvage stores, as the writer would: the first row of a rowid wins.
final class RecordingSink: SalvageSink {
    var inserted: [[Int64: [SQLValue]]]
    var duplicates: [Int]
    /// Table indexes outside the schema's tables that rows were given for.
    var outOfRange: [Int] = []
    var lost: [(page: UInt32, cell: Int, rowid: Int64?, values: Int)] = []

    init(schema: SalvageSchema) {
        inserted = Array(repeating: [:], count: schema.tables.count)
        duplicates = Array(repeating: 0, count: schema.tables.count)
    }

    func insert(table: Int, rowid: Int64, values: [SQLValue]) throws -> InsertResult {
        guard table >= 0 && table < inserted.count else {
            outOfRange.append(table)
            return .rejected("no such table")
        }
        if inserted[table][rowid] != nil {
            duplicates[table] += 1
            return .duplicate
        }
        inserted[table][rowid] = values
        return .inserted
    }

    func lost(page: UInt32, cell: Int, rowid: Int64?, values: [SQLValue], reason: String) throws {
        lost.append((page, cell, rowid, values.count))
    }
}

/// What a crash or a loop says before the run ends: the case being run, written to stderr
/// by a signal handler (a trap, a bad access, an abort) or by a watchdog thread when a case
/// runs past the timeout, which then aborts.
final class CaseGuard: @unchecked Sendable {
    let timeout: Double
    let tick = DispatchSemaphore(value: 0)
    let lock = NSLock()
    var note = ""
    var running = false
    var done = DispatchSemaphore(value: 0)
    static let signals: [Int32] = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT]
    nonisolated(unsafe) static var crashNote = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
    nonisolated(unsafe) static var previous: [Int32: sigaction] = [:]

    init(timeout: Double) { self.timeout = timeout }

    func start() {
        Self.crashNote[0] = 0
        for number in Self.signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                let note = CaseGuard.crashNote
                _ = write(2, note, strlen(note))
                // Whoever handled it before (the runtime's backtracer, or the default) takes
                // over when the faulting instruction runs again or the signal is raised again.
                if var old = CaseGuard.previous[signal] { sigaction(signal, &old, nil) } else { Glibc.signal(signal, SIG_DFL) }
            }
            sigemptyset(&action.sa_mask)
            var old = sigaction()
            sigaction(number, &action, &old)
            Self.previous[number] = old
        }
        running = true
        let watchdog = Thread { [self] in
            while true {
                if tick.wait(timeout: .now() + timeout) == .timedOut {
                    lock.lock()
                    let message = "PageReaderFuzzTests: a case ran past \(Int(timeout))s: a loop in the reader or the salvage.\n" + note
                    lock.unlock()
                    FileHandle.standardError.write(Data(message.utf8))
                    abort()
                }
                lock.lock()
                let stop = !running
                lock.unlock()
                if stop { break }
            }
            done.signal()
        }
        watchdog.start()
    }

    /// A case begins: what to print if it never ends or crashes.
    func begin(_ text: String) {
        lock.lock()
        note = text
        lock.unlock()
        let bytes = Array(text.utf8.prefix(4000))
        for (i, b) in bytes.enumerated() { Self.crashNote[i] = CChar(bitPattern: b) }
        Self.crashNote[bytes.count] = 0
        tick.signal()
    }

    func stop() {
        lock.lock()
        let wasRunning = running
        running = false
        lock.unlock()
        guard wasRunning else { return }
        tick.signal()
        done.wait()
        for (number, old) in Self.previous {
            var old = old
            sigaction(number, &old, nil)
        }
        Self.previous = [:]
    }
}
