import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 13's recovery table, asserted: `abathur-integrity --recover OUT DAMAGED --backup-dir DIR
/// --json` on each variant of the damage corpus (DamageCorpus.swift), for fixed seeds. For every
/// run: a documented exit code, the tool ends (10x its time on the undamaged file), no invented
/// row (every row's rowid exists in its table in the undamaged original), the minimum
/// in-table recovery, every altered row flagged (the backup in DIR is of the undamaged original),
/// and the damaged source files byte-identical afterwards (db, -wal, -shm, and nothing new
/// beside them).
///
/// `ABATHUR_CORPUS_SEEDS` (e.g. "1,2,3,4,5"), `ABATHUR_CORPUS_ROWS` and `ABATHUR_CORPUS_REPORT`
/// (a file that gets one JSON line per run) are for scripts/salvage-table.sh; `make check`
/// runs seeds 1 and 2 on 3000-task databases (~4.6 MB, ~16,000 rows in 11 tables).
final class SalvageCorpusTests: XCTestCase {
    static let environment = ProcessInfo.processInfo.environment
    static let seeds: [UInt64] = environment["ABATHUR_CORPUS_SEEDS"]
        .map { $0.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) } } ?? [1, 2]
    static let rows = environment["ABATHUR_CORPUS_ROWS"].flatMap(Int.init) ?? 3000
    static let report = environment["ABATHUR_CORPUS_REPORT"]

    /// The minimum in-table recovery (fraction of the original's rows back in their own table).
    /// Issue 13's figures; where the issue gives none, the floor is stated here.
    static func floor(_ variant: DamageVariant) -> Double {
        switch variant {
        case .leafZeroed: return 0.995
        case .leafRandomBytes: return 0.994
        case .bitFlips: return 1.0  // "100%, altered rows flagged"
        case .truncated90: return 0.96
        case .truncated50: return 0.81
        case .interiorZeroed: return 0.95
        case .page1Zeroed: return 0.95
        case .otherGenerationWAL: return 0.99
        case .indexLeafZeroed, .swappedPages, .headerMagic, .pageSizeField: return 1.0
        case .zeroedSectors: return 0.997
        case .textOverPage: return 0.995
        // Not in the table. Only a header field or a trunk's pointer is changed: every
        // b-tree is intact, so every row must come back (and the deleted rows on the free
        // pages, kept there with secure_delete off, must not: they would count as invented).
        case .freelistTrunkToLivePage: return 1.0
        // "SQLite's own recovery: 99.9% / 99.0%, at least as much": asserted against what
        // SQLite itself recovers from the same damaged files (measured per run), which is
        // the reference; these figures are only the report's.
        case .tornWALTail: return 0.999
        case .walFrameBitFlip: return 0.99
        }
    }

    /// Variants whose floor is capped by what the damage left: the rows whose cell bytes are
    /// untouched (`CorpusMeasure.bound`). On these databases the tables are laid out one after
    /// the other, so the last 10% of the file holds ~15% of the rows and the last half ~64%:
    /// truncated to 90% at most ~84.6% can come back, to 50% at most ~35.7% (3000 tasks; 85.0%
    /// and 38.3% at 20000), below the 96% and 81% (measured on other files). For these
    /// the floor is every intact row (all on whole pages the cut left). For the
    /// destroyed-page variants the cap only matters if a seed's damage hits more rows than the
    /// issue's figure allows for.
    static func capped(_ variant: DamageVariant) -> Bool {
        switch variant {
        case .truncated90, .truncated50, .zeroedSectors, .leafZeroed, .leafRandomBytes, .textOverPage: return true
        default: return false
        }
    }

    /// Variants whose damage any salvage meets: it reads the header, walks every table's
    /// b-tree, reads the freelist it uses and parses every WAL frame. For these exit 0 ("nothing
    /// damaged was met") would tell the operator a damaged file was sound. Not in the list: bit
    /// flips and zeroed sectors (a seed's damage may fall where nothing reads it, e.g. unused
    /// space), a zeroed index leaf (a salvage that rebuilds indexes need not read them) and a
    /// torn WAL tail (the normal residue of a crash).
    static func damageIsMet(_ variant: DamageVariant) -> Bool {
        switch variant {
        case .bitFlips, .zeroedSectors, .indexLeafZeroed, .tornWALTail: return false
        default: return true
        }
    }

    // MARK: - the variants

    func testLeafZeroed() throws { try corpus(.leafZeroed) }
    func testLeafRandomBytes() throws { try corpus(.leafRandomBytes) }
    func testBitFlips() throws { try corpus(.bitFlips) }
    func testTruncated90() throws { try corpus(.truncated90) }
    func testTruncated50() throws { try corpus(.truncated50) }
    func testInteriorZeroed() throws { try corpus(.interiorZeroed) }
    func testPage1Zeroed() throws { try corpus(.page1Zeroed) }
    func testOtherGenerationWAL() throws { try corpus(.otherGenerationWAL) }
    func testIndexLeafZeroed() throws { try corpus(.indexLeafZeroed) }
    func testSwappedPages() throws { try corpus(.swappedPages) }
    func testHeaderMagic() throws { try corpus(.headerMagic) }
    func testPageSizeField() throws { try corpus(.pageSizeField) }
    func testZeroedSectors() throws { try corpus(.zeroedSectors) }
    func testTextOverPage() throws { try corpus(.textOverPage) }
    func testFreelistTrunkToLivePage() throws { try corpus(.freelistTrunkToLivePage) }
    func testTornWALTail() throws { try corpus(.tornWALTail) }
    func testWALFrameBitFlip() throws { try corpus(.walFrameBitFlip) }

    /// The live-database form (`--db`, no PATH): the same guarantees, and the forensic copy
    /// (db, -wal, -shm) kept in BACKUP_DIR/forensic/salvage-STAMP/.
    func testLiveDatabaseFormOnATornWAL() throws {
        let box = try Sandbox()
        let seed = SalvageCorpusTests.seeds[0]
        let base = try box.makeCorpusBase(.hotWAL, rows: SalvageCorpusTests.rows, seed: seed, tag: "live")
        let limit = try baselineLimit(box, base)
        let damage = try DamageCorpus.make(.tornWALTail, seed: seed, from: base, in: box.root + "/damaged-live")
        // The live form takes the tools' lock beside the database (.NAME.abathur-lock, empty);
        // every other file there stays as it was.
        func sourceFiles() throws -> [String: String] {
            try box.fingerprint(box.root + "/damaged-live").filter { $0.key != ".abathur.db.abathur-lock" }
        }
        let sources = try sourceFiles()
        let out = box.root + "/out-live.db"
        let started = Date()
        let run = try box.run("abathur-integrity", ["--recover", out, "--db", damage.db, "--backup-dir", base.backupDir, "--json"],
                              timeout: limit)
        let seconds = Date().timeIntervalSince(started)
        XCTAssertEqual(try sourceFiles(), sources, "source files changed")
        let json = try check(run, damage: damage, base: base, out: out, seconds: seconds, box: box, form: "live")
        // The forensic copy: one directory in BACKUP_DIR/forensic/ (the one --json names), kept,
        // holding the db, -wal and -shm as they were.
        let forensic = base.backupDir + "/forensic"
        let copies = (try? FileManager.default.contentsOfDirectory(atPath: forensic)) ?? []
        XCTAssertEqual(copies.count, 1, "forensic copies in \(forensic): \(copies)")
        let named = json?["forensic_copy"] as? String
        XCTAssertEqual(named.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                       copies.first.map { URL(fileURLWithPath: forensic + "/" + $0).standardizedFileURL.path },
                       "--json forensic_copy vs the directory in \(forensic)")
        if let copy = copies.first {
            let kept = Set(try box.fingerprint(forensic + "/" + copy).values)
            for path in [damage.db, damage.db + "-wal", damage.db + "-shm"] {
                XCTAssertTrue(kept.contains(try box.sha256(path)), "\(path) not in the forensic copy \(copy)")
            }
        }
    }

    // MARK: - the machinery

    /// Builds the base (once, or once per seed for the WAL kinds, whose commit counts come from
    /// the seed), times the salvage of the undamaged files, then salvages each seed's damaged
    /// copy and checks it.
    func corpus(_ variant: DamageVariant, file: StaticString = #filePath, line: UInt = #line) throws {
        let box = try Sandbox("corpus-\(variant)")
        let perSeed = variant.baseKind == .hotWAL || variant.baseKind == .otherGeneration
        var shared: (base: CorpusBase, limit: TimeInterval)? = nil
        for seed in SalvageCorpusTests.seeds {
            let base: CorpusBase, limit: TimeInterval
            if let shared, !perSeed {
                (base, limit) = shared
            } else {
                base = try box.makeCorpusBase(variant.baseKind, rows: SalvageCorpusTests.rows, seed: seed,
                                              tag: perSeed ? "seed\(seed)" : "shared", file: file, line: line)
                limit = try baselineLimit(box, base, file: file, line: line)
                shared = (base, limit)
            }
            let dir = box.root + "/damaged-\(seed)"
            let damage = try DamageCorpus.make(variant, seed: seed, from: base, in: dir)
            let sources = try box.fingerprint(dir)
            let out = box.root + "/out-\(seed).db"
            let started = Date()
            let run: Run
            do {
                run = try box.run("abathur-integrity", ["--recover", out, damage.db, "--backup-dir", base.backupDir, "--json"],
                                  timeout: limit)
            } catch {
                XCTFail("\(variant) seed \(seed) (\(damage.description)): did not end within \(limit) s: \(error)", file: file, line: line)
                continue
            }
            let seconds = Date().timeIntervalSince(started)
            XCTAssertEqual(try box.fingerprint(dir), sources, "\(variant) seed \(seed): source files changed", file: file, line: line)
            try check(run, damage: damage, base: base, out: out, seconds: seconds, box: box, file: file, line: line)
        }
    }

    /// Salvages the undamaged files (a copy of them); everything must come back, unflagged,
    /// with exit 0. Returns the bound for the damaged runs: 10x this run's time (at least 10 s,
    /// so that starting a process on a busy 2-core machine is not what is measured).
    func baselineLimit(_ box: Sandbox, _ base: CorpusBase, file: StaticString = #filePath, line: UInt = #line) throws -> TimeInterval {
        let dir = box.root + "/undamaged-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let db = dir + "/abathur.db"
        try FileManager.default.copyItem(atPath: base.main, toPath: db)
        // Generation A's -wal is the damage of its variant, not part of the undamaged files.
        if let wal = base.wal, base.kind == .hotWAL { try FileManager.default.copyItem(atPath: wal, toPath: db + "-wal") }
        if let shm = base.shm { try FileManager.default.copyItem(atPath: shm, toPath: db + "-shm") }
        let out = dir + "-out.db"
        let started = Date()
        let run = try box.run("abathur-integrity", ["--recover", out, db, "--backup-dir", base.backupDir, "--json"])
        let seconds = Date().timeIntervalSince(started)
        XCTAssertEqual(run.status, 0, "undamaged \(base.kind): \(run.stderr) \(run.stdout.prefix(2000))", file: file, line: line)
        let measure = try CorpusMeasure.of(original: base.truth, out: out, file: file, line: line)
        XCTAssertEqual(measure.recovered, measure.original, "undamaged \(base.kind): rows missing", file: file, line: line)
        XCTAssertEqual(measure.invented, 0, "undamaged \(base.kind): rows invented", file: file, line: line)
        XCTAssertEqual(measure.altered, 0, "undamaged \(base.kind): rows altered", file: file, line: line)
        XCTAssertEqual(measure.lostAndFound, 0, "undamaged \(base.kind): lost_and_found", file: file, line: line)
        return max(10 * seconds, 10)
    }

    /// The checks on one damaged run; returns the parsed --json document.
    @discardableResult
    func check(_ run: Run, damage: Damage, base: CorpusBase, out: String, seconds: TimeInterval, box: Sandbox,
               form: String = "path", file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any]? {
        let variant = damage.variant
        let what = "\(variant) seed \(damage.seed) (\(damage.description))"
        XCTAssertTrue([0, 1, 4].contains(run.status), "\(what): exit \(run.status): \(run.stderr)", file: file, line: line)
        if SalvageCorpusTests.damageIsMet(variant) {
            XCTAssertNotEqual(run.status, 0, "\(what): exit 0 says nothing damaged was met", file: file, line: line)
        }
        let outExists = FileManager.default.fileExists(atPath: out)
        XCTAssertEqual(outExists, run.status != 4, "\(what): exit \(run.status) but OUT exists: \(outExists)", file: file, line: line)
        // The tools' --json envelope ({"tool", "ok", "exit_code", "result": {...}, ...}); the
        // salvage report (salvage-cli.md) is its "result".
        let envelope = (try? JSONSerialization.jsonObject(with: run.stdoutData)) as? [String: Any]
        let json = envelope?["result"] as? [String: Any]
        XCTAssertNotNil(json, "\(what): --json output is not one JSON object with a result: \(run.stdout.prefix(500)) \(run.stderr)", file: file, line: line)
        XCTAssertEqual(envelope?["exit_code"] as? Int, Int(run.status), "\(what): --json exit_code vs the exit status", file: file, line: line)

        let measure = try CorpusMeasure.of(original: base.truth, out: out, destroyed: damage.destroyed, file: file, line: line)
        var floor = SalvageCorpusTests.floor(variant)
        var reference: Double? = nil
        if damage.wal != nil {
            let own = try CorpusMeasure.sqliteOwn(damage, original: base.truth, scratch: box.root + "/sqlite-own-\(damage.seed)",
                                                  in: box, file: file, line: line)
            reference = own.inTable
            // The other generation keeps the 99%: what SQLite makes of it is only reported.
            if variant != .otherGenerationWAL { floor = own.inTable }
        } else if SalvageCorpusTests.capped(variant) {
            floor = min(floor, measure.bound)
        }
        let figures = String(format: "in-table %.4f%% (%d of %d; floor %.4f%%, intact %.4f%%), invented %d, altered %d, lost_and_found %d",
                             measure.inTable * 100, measure.recovered, measure.original, floor * 100, measure.bound * 100,
                             measure.invented, measure.altered, measure.lostAndFound)
        XCTAssertEqual(measure.invented, 0, "\(what): rows invented: \(figures); " + measure.tables.filter { $0.value.invented > 0 }
            .map { "\($0.key) \($0.value.inventedRowids)" }.joined(separator: "; "), file: file, line: line)
        XCTAssertGreaterThanOrEqual(measure.inTable, floor, "\(what): under-recovered: \(figures); missing: " + measure.tables
            .filter { !$0.value.missingRowids.isEmpty }.sorted { $0.key < $1.key }
            .map { "\($0.key) \($0.value.original - $0.value.recovered) \($0.value.missingRowids)" }.joined(separator: "; "),
            file: file, line: line)

        // Altered rows (rowid right, values changed) flagged per table in --json.
        let reported = Dictionary(((json?["tables"] as? [[String: Any]]) ?? []).compactMap { t in (t["name"] as? String).map { ($0, t) } },
                                  uniquingKeysWith: { a, _ in a })
        var flaggedTotal = 0
        for (name, table) in measure.tables.sorted(by: { $0.key < $1.key }) {
            let entry = reported[name]
            let flagged = (entry?["altered"] as? Int) ?? 0
            let rowids = Set(((entry?["altered_rowids"] as? [Any]) ?? []).compactMap { ($0 as? NSNumber)?.int64Value })
            flaggedTotal += flagged
            if table.recovered + table.invented > 0 {
                XCTAssertNotNil(entry, "\(what): table \(name) has rows in OUT but not in --json tables", file: file, line: line)
                XCTAssertEqual(entry?["recovered"] as? Int, table.recovered + table.invented,
                               "\(what): \(name): json recovered vs rows in OUT", file: file, line: line)
            }
            if let entry, outExists {
                XCTAssertEqual(entry["in_backup"] as? Int, table.original, "\(what): \(name): in_backup vs the backup's rows", file: file, line: line)
            }
            guard table.altered > 0 else { continue }
            XCTAssertGreaterThanOrEqual(flagged, table.altered,
                                        "\(what): \(name): \(table.altered) rows altered, \(flagged) flagged", file: file, line: line)
            if flagged <= 100 {
                let missed = table.alteredRowids.filter { !rowids.contains($0) }
                XCTAssertEqual(missed, [], "\(what): \(name): altered rows not in altered_rowids", file: file, line: line)
            }
        }
        if run.status == 0 {  // "nothing damaged was met, ... no row differs from the newest backup"
            XCTAssertEqual(measure.recovered, measure.original, "\(what): exit 0 with rows missing: \(figures)", file: file, line: line)
            XCTAssertEqual(measure.altered, 0, "\(what): exit 0 with altered rows", file: file, line: line)
            XCTAssertEqual(measure.lostAndFound, 0, "\(what): exit 0 with rows in lost_and_found", file: file, line: line)
        }
        if let path = SalvageCorpusTests.report {
            let row: [String: Any] = [
                "variant": variant.rawValue, "seed": damage.seed, "form": form, "damage": damage.description, "exit": run.status,
                "seconds": seconds, "original": measure.original, "recovered": measure.recovered,
                "in_table": measure.inTable, "intact": measure.bound, "invented": measure.invented,
                "altered": measure.altered, "flagged": flaggedTotal, "lost_and_found": measure.lostAndFound,
                "sqlite_own": reference.map { $0 as Any } ?? NSNull(), "floor": floor, "schema_from": json?["schema_from"] ?? NSNull(),
                "wal_used": (json?["wal"] as? [String: Any])?["used"] ?? NSNull(),
            ]
            var line = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
            line.append(0x0A)
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            if fd >= 0 {
                _ = line.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
                close(fd)
            }
        }
        return json
    }
}
