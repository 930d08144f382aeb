import Foundation
import XCTest

/// The deterministic damage corpus of issue 13: from an undamaged abathur-shaped database (made
/// by the real `abathur-demo`), a seed and a variant, a damaged copy, always the same one for the
/// same seed and base. Pages are chosen by their owner and type as SQLite's `dbstat` table reports
/// them on the undamaged file; every random choice comes from `SplitMix64(seed)`. (`abathur-demo
/// create` is deterministic too, so the same rows give the same base.)
///
/// And the measuring stick: `CorpusMeasure` compares a salvaged database with the undamaged
/// original, row by row, by rowid (python3's sqlite3 module on Debian's libsqlite3).

/// SplitMix64 (Steele, Lea, Flood 2014): a seeded generator, the same numbers on every machine.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (n > 0); the modulo bias is negligible for the small n used here.
    mutating func below(_ n: Int) -> Int {
        precondition(n > 0, "below(0)")
        return Int(next() % UInt64(n))
    }

    mutating func pick<T>(_ items: [T]) -> T {
        precondition(!items.isEmpty, "pick from nothing")
        return items[below(items.count)]
    }

    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
}

/// What `dbstat` says about an undamaged file: each b-tree page's owner and type.
struct PageMap: Decodable {
    struct Page: Decodable {
        var name: String
        var type: String  // "internal", "leaf", "overflow"
        var pageno: Int
    }

    var pageSize: Int
    var pageCount: Int
    var tables: [String]  // the data tables (not sqlite_*)
    var indexes: [String]  // every index, SQLite's automatic ones included
    var pages: [Page]
    var freelistTrunk: Int
    var freelistCount: Int

    enum CodingKeys: String, CodingKey {
        case pageSize = "page_size", pageCount = "page_count", tables, indexes, pages
        case freelistTrunk = "freelist_trunk", freelistCount = "freelist_count"
    }

    /// Leaf (or interior) pages of the data tables.
    func tablePages(_ type: String) -> [Int] {
        let names = Set(tables)
        return pages.filter { names.contains($0.name) && $0.type == type }.map(\.pageno).sorted()
    }

    func indexPages(_ type: String) -> [Int] {
        let names = Set(indexes)
        return pages.filter { names.contains($0.name) && $0.type == type }.map(\.pageno).sorted()
    }

    func owner(_ page: Int) -> String { pages.first { $0.pageno == page }.map { "\($0.name) \($0.type)" } ?? "?" }

    /// `dbstat` on `path`, opened immutable (nothing written, no -wal or -shm created).
    static func of(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> PageMap {
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", CorpusPython.pageMap, path])
        guard run.status == 0 else {
            XCTFail("page map of \(path): \(run.stderr)", file: file, line: line)
            throw CorpusError.python(run.stderr)
        }
        return try JSONDecoder().decode(PageMap.self, from: run.stdoutData)
    }
}

enum CorpusError: Error {
    case python(String)
    case setup(String)
}

/// The damage variants: every row of issue 13's table and every extra case its test list names.
enum DamageVariant: String, CaseIterable {
    case leafZeroed = "one table leaf page zeroed"
    case leafRandomBytes = "random bytes over a table leaf page"
    case bitFlips = "32 scattered bit flips"
    case truncated90 = "truncated to 90%"
    case truncated50 = "truncated to 50%"
    case interiorZeroed = "one table interior page zeroed"
    case page1Zeroed = "page 1 zeroed"
    case otherGenerationWAL = "a WAL from another database generation"
    case indexLeafZeroed = "a zeroed index leaf"
    case swappedPages = "two swapped pages"
    case headerMagic = "a damaged header magic"
    case pageSizeField = "a damaged page size field"
    case zeroedSectors = "zeroed 512-byte sectors"
    case textOverPage = "text written over part of a page"
    case freelistTrunkToLivePage = "a freelist trunk pointing at a live page"
    case tornWALTail = "a torn WAL tail"
    case walFrameBitFlip = "a bit flip in a middle WAL frame"

    /// The undamaged database each variant starts from.
    var baseKind: CorpusBase.Kind {
        switch self {
        case .otherGenerationWAL: return .otherGeneration
        case .freelistTrunkToLivePage: return .withFreelist
        case .tornWALTail, .walFrameBitFlip: return .hotWAL
        default: return .plain
        }
    }
}

/// An undamaged database to damage, and the truth to measure against.
struct CorpusBase {
    enum Kind {
        /// `abathur-demo create`, closed: the main file holds everything.
        case plain
        /// Then a third of the audit rows deleted (in one range, secure_delete off) and the file
        /// closed: free pages on the freelist, with at least one trunk, holding the deleted rows.
        case withFreelist
        /// Then `abathur-demo write --commits N --crash`: a hot `-wal` of N commits beside the file.
        case hotWAL
        /// A hot `-wal` (generation A) copied aside; then the database moves on (more commits,
        /// the writer's newest rows deleted, a TRUNCATE checkpoint): the main file is
        /// generation B, and A's `-wal` is what lies beside it. Odd seeds stop there: A's pages
        /// laid over B still make sound b-trees, holding rows B deleted. Even seeds also VACUUM
        /// B, so A's pages land on pages that now hold something else.
        case otherGeneration
    }

    var kind: Kind
    /// The source files to damage: the main file, and a `-wal` to put beside it (if any).
    var main: String
    var wal: String?
    /// The crashed writer's `-shm` (hot-WAL kind), copied beside the damaged files too.
    var shm: String? { kind == .hotWAL ? main + "-shm" : nil }
    /// The undamaged content, checkpointed into one file: what a perfect salvage gives back.
    var truth: String
    /// The backup directory holding one backup of `truth` (its manifest has the root pages).
    var backupDir: String
    /// dbstat of `main` (the WAL kinds: of `truth`, whose page numbers the WAL shares).
    var map: PageMap
    /// How the base was made, where the seed chose (for the damage's description).
    var note = ""
}

extension Sandbox {
    /// Builds the undamaged base of `kind` under `root/base-TAG`, with a backup of its truth.
    /// The WAL kinds draw their commit counts from `seed`.
    func makeCorpusBase(_ kind: CorpusBase.Kind, rows: Int, seed: UInt64, tag: String,
                        file: StaticString = #filePath, line: UInt = #line) throws -> CorpusBase {
        var rng = SplitMix64(seed: seed ^ 0xBA5E)
        let dir = root + "/base-" + tag
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let db = dir + "/abathur.db"
        let created = try Sandbox.execute(Binaries.demo, ["create", db, "--rows", "\(rows)"])
        guard created.status == 0 else {
            XCTFail("abathur-demo create: \(created.stderr)", file: file, line: line)
            throw CorpusError.setup(created.stderr)
        }
        let main = db
        var wal: String? = nil, truth = db, note = ""
        switch kind {
        case .plain:
            break
        case .withFreelist:
            try python(CorpusPython.deleteForFreelist, [db], file: file, line: line)
        case .hotWAL:
            let commits = 30 + rng.below(31)
            try crashWriter(db, commits: commits, file: file, line: line)
            wal = db + "-wal"
            truth = dir + "/truth.db"
            try settledCopy(db, to: truth, file: file, line: line)
        case .otherGeneration:
            try crashWriter(db, commits: 30 + rng.below(31), file: file, line: line)
            let oldWAL = dir + "/generation-a.db-wal"
            try FileManager.default.copyItem(atPath: db + "-wal", toPath: oldWAL)
            let more = try Sandbox.execute(Binaries.demo, ["write", db, "--commits", "\(10 + rng.below(21))"])
            guard more.status == 0 else {
                XCTFail("abathur-demo write: \(more.stderr)", file: file, line: line)
                throw CorpusError.setup(more.stderr)
            }
            let vacuum = seed % 2 == 0
            try python(CorpusPython.moveOn, [db, vacuum ? "vacuum" : ""], file: file, line: line)
            wal = oldWAL
            note = vacuum ? "B deleted rows and was vacuumed" : "B deleted rows"
        }
        // Only the hot-WAL kind keeps files beside the main one (its -wal and -shm).
        for suffix in ["-wal", "-shm"] where kind != .hotWAL {
            XCTAssertFalse(FileManager.default.fileExists(atPath: db + suffix), "\(db)\(suffix) left", file: file, line: line)
        }
        let backupDir = dir + "-backups"
        let backup = try run("abathur-backup", ["--db", truth, "--backup-dir", backupDir])
        guard backup.status == 0 else {
            XCTFail("abathur-backup of \(truth): \(backup.status) \(backup.stderr)", file: file, line: line)
            throw CorpusError.setup(backup.stderr)
        }
        let map = try PageMap.of(kind == .hotWAL ? truth : main, file: file, line: line)
        return CorpusBase(kind: kind, main: main, wal: wal, truth: truth, backupDir: backupDir, map: map, note: note)
    }

    /// `abathur-demo write DB --commits N --crash`: N commits left in a hot `-wal`.
    func crashWriter(_ db: String, commits: Int, file: StaticString, line: UInt) throws {
        let run = try Sandbox.execute(Binaries.demo, ["write", db, "--commits", "\(commits)", "--crash"])
        guard run.status == 0, FileManager.default.fileExists(atPath: db + "-wal") else {
            XCTFail("abathur-demo write --crash: \(run.status) \(run.stderr)", file: file, line: line)
            throw CorpusError.setup(run.stderr)
        }
    }

    /// A copy of db (+ -wal) opened and closed by SQLite: the content SQLite sees, in one file.
    func settledCopy(_ db: String, to target: String, file: StaticString, line: UInt) throws {
        let fm = FileManager.default
        try fm.copyItem(atPath: db, toPath: target)
        if fm.fileExists(atPath: db + "-wal") { try fm.copyItem(atPath: db + "-wal", toPath: target + "-wal") }
        try python(CorpusPython.settle, [target], file: file, line: line)
    }

    @discardableResult
    func python(_ script: String, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", script] + args)
        guard run.status == 0 else {
            XCTFail("python3: \(run.stderr)", file: file, line: line)
            throw CorpusError.python(run.stderr)
        }
        return run
    }
}

/// One damaged copy: what was done, and which bytes of the main file it destroyed (for the
/// bound on what any salvage could give back).
struct Damage {
    var variant: DamageVariant
    var seed: UInt64
    var description: String
    /// Byte ranges of the main file whose content is gone (zeroed, overwritten, cut off).
    var destroyed: [Range<Int>]
    var db: String
    var wal: String?
}

enum DamageCorpus {
    /// The density of zeroed sectors: one 512-byte sector in this many. Issue 13's 99.7%
    /// reference implies a density of this order: each zeroed sector inside a table leaf
    /// destroys the 2 to 5 rows that overlap it, so at 1 in 50 (2% of the bytes) no tool
    /// could get back more than ~93% of the rows of these databases.
    static let sectorDensity = 1000

    /// Writes the damaged copy of `base` for `variant` and `seed` into `dir` (created):
    /// `dir/abathur.db`, and `dir/abathur.db-wal` for the WAL variants.
    static func make(_ variant: DamageVariant, seed: UInt64, from base: CorpusBase, in dir: String) throws -> Damage {
        precondition(variant.baseKind == base.kind, "\(variant) needs a \(variant.baseKind) base")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var rng = SplitMix64(seed: seed &* 0x100 &+ UInt64(DamageVariant.allCases.firstIndex(of: variant)!))
        var db = try Data(contentsOf: URL(fileURLWithPath: base.main))
        var wal = try base.wal.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let map = base.map
        let ps = map.pageSize
        func range(_ page: Int) -> Range<Int> { (page - 1) * ps ..< page * ps }
        func fill(_ r: Range<Int>, _ byte: (inout SplitMix64) -> UInt8) {
            for i in r { db[i] = byte(&rng) }
        }
        var destroyed: [Range<Int>] = []
        var what: String
        let leaves = map.tablePages("leaf")
        switch variant {
        case .leafZeroed:
            let p = rng.pick(leaves)
            fill(range(p)) { _ in 0 }
            destroyed = [range(p)]
            what = "page \(p) (\(map.owner(p))) zeroed"
        case .leafRandomBytes:
            let p = rng.pick(leaves)
            fill(range(p)) { $0.byte() }
            destroyed = [range(p)]
            what = "page \(p) (\(map.owner(p))) random bytes"
        case .bitFlips:
            var flipped = Set<Int>()  // bit positions in the file
            while flipped.count < 32 {
                let p = rng.pick(leaves)
                flipped.insert(range(p).lowerBound * 8 + rng.below(ps * 8))
            }
            for bit in flipped.sorted() { db[bit / 8] ^= UInt8(1 << (bit % 8)) }
            destroyed = flipped.sorted().map { $0 / 8 ..< $0 / 8 + 1 }
            what = "32 bits flipped in pages " + Set(flipped.map { $0 / 8 / ps + 1 }).sorted().map(String.init).joined(separator: ",")
        case .truncated90, .truncated50:
            let keep = db.count * (variant == .truncated90 ? 9 : 5) / 10
            destroyed = [keep ..< db.count]
            db = db.prefix(keep)
            what = "truncated to \(keep) of \(keep + destroyed[0].count) bytes"
        case .interiorZeroed:
            let p = rng.pick(map.tablePages("internal"))
            fill(range(p)) { _ in 0 }
            destroyed = [range(p)]
            what = "page \(p) (\(map.owner(p))) zeroed"
        case .page1Zeroed:
            fill(range(1)) { _ in 0 }
            destroyed = [range(1)]
            what = "page 1 zeroed"
        case .otherGenerationWAL:
            what = "generation A's -wal (\(wal?.count ?? 0) bytes) beside generation B's main file (\(base.note))"
        case .indexLeafZeroed:
            let p = rng.pick(map.indexPages("leaf"))
            fill(range(p)) { _ in 0 }
            destroyed = [range(p)]
            what = "page \(p) (\(map.owner(p))) zeroed"
        case .swappedPages:
            let a = rng.pick(leaves)
            var b = a
            while b == a { b = rng.pick(leaves) }
            let pa = db[range(a)], pb = db[range(b)]
            db.replaceSubrange(range(a), with: pb)
            db.replaceSubrange(range(b), with: pa)
            what = "pages \(a) (\(map.owner(a))) and \(b) (\(map.owner(b))) swapped"
        case .headerMagic:
            var changed: [Int] = []
            for _ in 0 ..< 1 + rng.below(4) {
                let i = rng.below(16)
                var value = rng.byte()
                while value == db[i] { value = rng.byte() }
                db[i] = value
                changed.append(i)
            }
            what = "header magic bytes \(Set(changed).sorted()) overwritten"
        case .pageSizeField:
            let truth = ps == 65536 ? 1 : ps
            let value = rng.pick([0x0000, 0x0001, 0x0200, 0x0400, 0x2000, 0x8000, 0x0FFF, 0xFFFF].filter { $0 != truth })
            db[16] = UInt8(value >> 8)
            db[17] = UInt8(value & 0xFF)
            what = "page size field \(truth) -> \(value)"
        case .zeroedSectors:
            let sectors = db.count / 512
            var chosen = Set<Int>()
            while chosen.count < max(4, sectors / sectorDensity) { chosen.insert(rng.below(sectors)) }
            for s in chosen { fill(s * 512 ..< s * 512 + 512) { _ in 0 } }
            destroyed = chosen.sorted().map { $0 * 512 ..< $0 * 512 + 512 }
            what = "\(chosen.count) of \(sectors) sectors zeroed: " + chosen.sorted().map { "\($0)(p\($0 * 512 / ps + 1))" }.joined(separator: ",")
        case .textOverPage:
            let p = rng.pick(leaves)
            let length = ps * (40 + rng.below(21)) / 100
            let text = Array("The quick brown fox jumps over the lazy dog; a note pasted into the wrong file. ".utf8)
            let start = rng.below(text.count)
            let r = range(p).lowerBound ..< range(p).lowerBound + length
            for (k, i) in r.enumerated() { db[i] = text[(start + k) % text.count] }
            destroyed = [r]
            what = "\(length) bytes of text over the start of page \(p) (\(map.owner(p)))"
        case .freelistTrunkToLivePage:
            let live = rng.pick(leaves)
            precondition(map.freelistTrunk > 0, "no freelist in the base")
            let viaHeader = rng.below(2) == 0
            let at = viaHeader ? 32 : range(map.freelistTrunk).lowerBound
            db.replaceSubrange(at ..< at + 4, with: [UInt8(live >> 24 & 0xFF), UInt8(live >> 16 & 0xFF), UInt8(live >> 8 & 0xFF), UInt8(live & 0xFF)])
            what = viaHeader
                ? "header's first freelist trunk -> live page \(live) (\(map.owner(live)))"
                : "trunk \(map.freelistTrunk)'s next trunk -> live page \(live) (\(map.owner(live)))"
        case .tornWALTail:
            let (walPS, frames) = walGeometry(wal!)
            let frame = frames - rng.below(min(3, frames))
            let cut = 32 + (frame - 1) * (24 + walPS) + 1 + rng.below(24 + walPS - 1)
            wal = wal!.prefix(cut)
            what = "-wal of \(frames) frames cut at byte \(cut), inside frame \(frame)"
        case .walFrameBitFlip:
            let (walPS, frames) = walGeometry(wal!)
            let frame = frames / 3 + 1 + rng.below(max(1, frames / 3))
            let at = 32 + (frame - 1) * (24 + walPS) + 24 + rng.below(walPS)
            let bit = rng.below(8)
            wal![at] ^= UInt8(1 << bit)
            what = "-wal of \(frames) frames: bit \(bit) of byte \(at) flipped, in frame \(frame)'s page data"
        }
        let target = dir + "/abathur.db"
        try db.write(to: URL(fileURLWithPath: target))
        if let wal { try wal.write(to: URL(fileURLWithPath: target + "-wal")) }
        if let shm = base.shm { try FileManager.default.copyItem(atPath: shm, toPath: target + "-shm") }
        return Damage(variant: variant, seed: seed, description: what, destroyed: destroyed, db: target,
                      wal: wal == nil ? nil : target + "-wal")
    }

    /// A WAL's page size and its number of whole frames.
    static func walGeometry(_ data: Data) -> (pageSize: Int, frames: Int) {
        let ps = Int(data[8]) << 24 | Int(data[9]) << 16 | Int(data[10]) << 8 | Int(data[11])
        return (ps, (data.count - 32) / (24 + ps))
    }
}

/// How a salvaged database compares with the undamaged original, by rowid, table by table.
struct CorpusMeasure: Decodable {
    struct Table: Decodable {
        var original: Int
        var recovered: Int  // rows of OUT's table whose rowid is in the original's
        var invented: Int
        var inventedRowids: [Int64]  // the first 20
        var missingRowids: [Int64]  // original rows not in OUT's table, the first 20
        var altered: Int
        var alteredRowids: [Int64]
        var intact: Int  // rows whose cell bytes the damage did not touch

        enum CodingKeys: String, CodingKey {
            case original, recovered, invented, altered, intact
            case inventedRowids = "invented_rowids", alteredRowids = "altered_rowids", missingRowids = "missing_rowids"
        }
    }

    var tables: [String: Table]
    var lostAndFound: Int
    var outExists: Bool

    enum CodingKeys: String, CodingKey {
        case tables, lostAndFound = "lost_and_found", outExists = "out_exists"
    }

    var original: Int { tables.values.map(\.original).reduce(0, +) }
    var recovered: Int { tables.values.map(\.recovered).reduce(0, +) }
    var invented: Int { tables.values.map(\.invented).reduce(0, +) }
    var altered: Int { tables.values.map(\.altered).reduce(0, +) }
    var intact: Int { tables.values.map(\.intact).reduce(0, +) }
    /// In-table recovery: original rows back in their own table, over all original rows.
    var inTable: Double { original == 0 ? 0 : Double(recovered) / Double(original) }
    /// The most any salvage could give back: rows whose bytes the damage left alone.
    var bound: Double { original == 0 ? 0 : Double(intact) / Double(original) }

    /// Compares `out` (may not exist) with `original` (undamaged, one file); `destroyed` are
    /// the byte ranges of the original's layout that the damage wiped.
    static func of(original: String, out: String, destroyed: [Range<Int>] = [],
                   file: StaticString = #filePath, line: UInt = #line) throws -> CorpusMeasure {
        let ranges = "[" + destroyed.map { "[\($0.lowerBound),\($0.upperBound)]" }.joined(separator: ",") + "]"
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", CorpusPython.measure, original, out, ranges])
        guard run.status == 0 else {
            XCTFail("measure \(out): \(run.stderr)", file: file, line: line)
            throw CorpusError.python(run.stderr)
        }
        return try JSONDecoder().decode(CorpusMeasure.self, from: run.stdoutData)
    }

    /// What SQLite itself makes of damaged files (db + -wal): a copy opened and closed by
    /// SQLite, measured. The reference for the WAL variants ("at least as much").
    static func sqliteOwn(_ damage: Damage, original: String, scratch: String, in box: Sandbox,
                          file: StaticString = #filePath, line: UInt = #line) throws -> CorpusMeasure {
        try? FileManager.default.removeItem(atPath: scratch)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        try box.settledCopy(damage.db, to: scratch + "/abathur.db", file: file, line: line)
        return try of(original: original, out: scratch + "/abathur.db", file: file, line: line)
    }
}

/// The python3 (Debian's, on Debian's libsqlite3 with dbstat) the corpus runs.
enum CorpusPython {
    static let prelude = #"""
    import sqlite3, sys, json, os
    from urllib.request import pathname2url
    def immutable(path):
        c = sqlite3.connect('file:%s?immutable=1' % pathname2url(os.path.abspath(path)), uri=True)
        c.text_factory = bytes  # values compared byte for byte (checkpoints.data is TEXT, not UTF-8)
        return c

    """#

    static let pageMap = prelude + #"""
    c = immutable(sys.argv[1])
    head = open(sys.argv[1], 'rb').read(100)
    c.text_factory = str
    schema = c.execute("SELECT type, name FROM sqlite_schema WHERE type IN ('table','index')").fetchall()
    tables = sorted(n for t, n in schema if t == 'table' and not n.startswith('sqlite_'))
    indexes = sorted(n for t, n in schema if t == 'index')
    pages = [{"name": n, "type": t, "pageno": p} for n, t, p in c.execute("SELECT name, pagetype, pageno FROM dbstat")]
    print(json.dumps({"page_size": c.execute("PRAGMA page_size").fetchone()[0],
                      "page_count": c.execute("PRAGMA page_count").fetchone()[0],
                      "tables": tables, "indexes": indexes, "pages": pages,
                      "freelist_trunk": int.from_bytes(head[32:36], 'big'),
                      "freelist_count": int.from_bytes(head[36:40], 'big')}))
    """#

    /// A third of the audit rows, in one rowid range, deleted: their pages go to the freelist.
    /// With secure_delete off (Debian's libsqlite3 has it on by default, and zeroes what it
    /// frees), the free pages keep the deleted rows, so a salvage that reads them shows up as
    /// invented rows.
    static let deleteForFreelist = #"""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1], isolation_level=None)
    c.execute("PRAGMA secure_delete=OFF")
    n = c.execute("SELECT max(id) FROM audit").fetchone()[0]
    c.execute("DELETE FROM audit WHERE id BETWEEN ? AND ?", (n // 3, 2 * n // 3))
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    """#

    /// Generation B: the writer's newest rows (odd sequence numbers, and their audit rows)
    /// deleted, so rows generation A's -wal still holds exist nowhere in B; with argv[2] =
    /// "vacuum" a VACUUM (every page renumbered); then a TRUNCATE checkpoint and a clean close.
    static let moveOn = #"""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1], isolation_level=None)
    c.execute("BEGIN")
    c.execute("DELETE FROM audit WHERE action = 'writer' AND CAST(substr(details, 5) AS INTEGER) % 2 = 1")
    c.execute("DELETE FROM tasks WHERE writer_seq % 2 = 1")
    c.execute("COMMIT")
    if sys.argv[2] == "vacuum":
        c.execute("VACUUM")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    """#

    /// Opens (WAL recovery), reads, checkpoints and closes: the file alone holds what SQLite saw
    /// (damaged files may be "malformed" to SQLite: then what it managed is what it saw).
    static let settle = #"""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1], isolation_level=None)
    try:
        c.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError as e:
        print("sqlite3: %s" % e, file=sys.stderr)
    c.close()
    """#

    /// argv: original (undamaged, one file), out (may not exist), destroyed byte ranges (JSON).
    static let measure = prelude + #"""
    orig_path, out_path, destroyed = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    o = immutable(orig_path)
    o.text_factory = str
    tables = [r[0] for r in o.execute("SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    out = immutable(out_path) if os.path.exists(out_path) else None
    out_tables = set(r[0].decode() for r in out.execute("SELECT name FROM sqlite_schema WHERE type='table'")) if out else set()

    # Rows whose cell bytes (and overflow pages) the damage touched, from the original's layout.
    data = open(orig_path, 'rb').read()
    ps = int.from_bytes(data[16:18], 'big')
    ps = 65536 if ps == 1 else ps
    usable = ps - data[20]
    def varint(b, i):
        v = 0
        for k in range(8):
            v = (v << 7) | (b[i + k] & 0x7f)
            if b[i + k] < 0x80:
                return v, i + k + 1
        return (v << 8) | b[i + 8], i + 9
    def hit(a, b):
        return any(x < b and a < y for x, y in destroyed)
    touched = {t: set() for t in tables}
    if destroyed:
        for name, p in o.execute("SELECT name, pageno FROM dbstat WHERE pagetype = 'leaf'").fetchall():
            if name not in touched:
                continue
            base = (p - 1) * ps
            hdr = base + (100 if p == 1 else 0)
            for k in range(int.from_bytes(data[hdr + 3:hdr + 5], 'big')):
                off = base + int.from_bytes(data[hdr + 8 + 2 * k:hdr + 10 + 2 * k], 'big')
                size, i = varint(data, off)
                rowid, i = varint(data, i)
                x = usable - 35
                spans = []
                if size <= x:
                    spans.append((off, i + size))
                else:
                    m = ((usable - 12) * 32 // 255) - 23
                    local = m + ((size - m) % (usable - 4))
                    local = local if local <= x else m
                    spans.append((off, i + local + 4))
                    nxt, left, seen = int.from_bytes(data[i + local:i + local + 4], 'big'), size - local, 0
                    while nxt and left > 0 and seen < 100000:
                        spans.append(((nxt - 1) * ps, nxt * ps))
                        nxt = int.from_bytes(data[(nxt - 1) * ps:(nxt - 1) * ps + 4], 'big')
                        left -= usable - 4
                        seen += 1
                if any(hit(a, b) for a, b in spans):
                    touched[name].add(rowid if rowid < 1 << 63 else rowid - (1 << 64))

    o.text_factory = bytes
    def rows(db, t):
        # Up to the first error: SQLite's own reading of damaged files can end in "malformed".
        found = {}
        try:
            for r in db.execute('SELECT rowid, * FROM "%s"' % t.replace('"', '""')):
                found[r[0]] = r[1:]
        except sqlite3.DatabaseError:
            pass
        return found
    result = {}
    for t in tables:
        orows = {r[0]: r[1:] for r in o.execute('SELECT rowid, * FROM "%s"' % t.replace('"', '""'))}
        rrows = rows(out, t) if t in out_tables else {}
        invented = sorted(k for k in rrows if k not in orows)
        altered = sorted(k for k in rrows if k in orows and rrows[k] != orows[k])
        missing = sorted(k for k in orows if k not in rrows)
        result[t] = {"original": len(orows), "recovered": sum(1 for k in rrows if k in orows),
                     "invented": len(invented), "invented_rowids": invented[:20],
                     "altered": len(altered), "altered_rowids": altered, "missing_rowids": missing[:20],
                     "intact": len(orows) - len(touched[t] & set(orows))}
    laf = 0
    if 'lost_and_found' in out_tables:
        laf = len(rows(out, 'lost_and_found'))
    print(json.dumps({"tables": result, "lost_and_found": laf, "out_exists": out is not None}))
    """#
}
