import Foundation
import XCTest

/// What SQLite itself makes of a database and its `-wal`, seen on a copy (db and `-wal`, no
/// `-shm`, so SQLite recovers the WAL from the file alone): `PRAGMA wal_checkpoint` first, on
/// the fresh open (its `log` is SQLite's mxFrame after recovery), then `integrity_check`, the
/// rows of every table and which table or index owns each page (`dbstat`).
struct SQLiteView: Equatable {
    var busy = -1
    var log = -1
    var checkpointed = -1
    var integrity: [String] = []
    /// Table → rows.
    var rowCounts: [String: Int] = [:]
    /// SHA-256 over every table's rows in rowid order (the logical content).
    var contentSHA256 = ""
    var pageCount = 0
    /// Page → the table or index that owns it, in the database as SQLite sees it.
    var owners: [Int: String] = [:]
    /// What SQLite could not do on the copy.
    var errors: [String] = []

    var isSound: Bool { errors.isEmpty && integrity == ["ok"] }
}

/// One frame header of a `-wal`, as the file holds it.
struct WALFrameHeader {
    var page: UInt32
    var commit: UInt32
    var salt1: UInt32
    var salt2: UInt32
}

/// A `-wal` read raw (no checksum verification: the referee is SQLite, this only locates
/// frames): the header's salts, every whole frame's header, the bytes after the last one.
struct WALLayout {
    var pageSize: Int
    var salt1: UInt32
    var salt2: UInt32
    var frames: [WALFrameHeader]
    var trailingBytes: Int
    /// 1-based index of the first whole frame SQLite's recovery rejects (FACTS.md, WAL file):
    /// salts not the header's, page number 0, or a cumulative checksum that fails. Nil when
    /// every whole frame is valid. Computed here, independently of the tool.
    var firstInvalidFrame: Int?
    var frameSize: Int { 24 + pageSize }

    init(_ path: String) throws {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func u32(_ o: Int) -> UInt32 { UInt32(data[o]) << 24 | UInt32(data[o + 1]) << 16 | UInt32(data[o + 2]) << 8 | UInt32(data[o + 3]) }
        pageSize = Int(u32(8))
        salt1 = u32(16)
        salt2 = u32(20)
        let frameSize = 24 + pageSize
        let whole = (data.count - 32) / frameSize
        trailingBytes = (data.count - 32) % frameSize
        frames = (0..<whole).map { i in
            let o = 32 + i * frameSize
            return WALFrameHeader(page: u32(o), commit: u32(o + 4), salt1: u32(o + 8), salt2: u32(o + 12))
        }
        // The checksum: words in the byte order the magic's low bit gives, s0 += a + s1,
        // s1 += b + s0, chained from the header's checksum over each frame's first 8 header
        // bytes and its page.
        let bigEndian = u32(0) & 1 == 1
        func word(_ o: Int) -> UInt32 {
            bigEndian ? u32(o) : UInt32(data[o]) | UInt32(data[o + 1]) << 8 | UInt32(data[o + 2]) << 16 | UInt32(data[o + 3]) << 24
        }
        var s0 = u32(24), s1 = u32(28)
        func sum(_ from: Int, _ count: Int) {
            var o = from
            while o < from + count {
                s0 = s0 &+ word(o) &+ s1
                s1 = s1 &+ word(o + 4) &+ s0
                o += 8
            }
        }
        for (i, frame) in frames.enumerated() {
            let o = 32 + i * frameSize
            sum(o, 8)
            sum(o + 24, pageSize)
            if frame.salt1 != salt1 || frame.salt2 != salt2 || frame.page == 0 || s0 != u32(o + 16) || s1 != u32(o + 20) {
                firstInvalidFrame = i + 1
                break
            }
        }
    }

    /// 1-based offset in the file of frame `index`'s header.
    func offset(ofFrame index: Int) -> Int { 32 + (index - 1) * frameSize }

    /// 1-based indexes of the commit frames that carry the header's salts.
    var commitFrames: [Int] {
        frames.indices.filter { frames[$0].commit != 0 && frames[$0].salt1 == salt1 && frames[$0].salt2 == salt2 }.map { $0 + 1 }
    }

    /// 1-based index of the first frame whose salts are not the header's, if any.
    var firstForeignSaltFrame: Int? {
        frames.firstIndex { $0.salt1 != salt1 || $0.salt2 != salt2 }.map { $0 + 1 }
    }
}

/// A live database left by a real writer that died (FACTS.md 7, 10): what it is, and what
/// SQLite and `abathur-walfix` must make of it.
struct WALScenario {
    enum Kind: String {
        case clean, midTransaction, reset, tornTail, supersededFlip, lastingFlip, damagedHeader, foreign
    }

    var kind: Kind
    /// SQLite's own view of the fixture, taken on a copy when it was made.
    var view: SQLiteView
    /// For the damaged fixtures: SQLite's view of the same files before the damage (every
    /// commit the writer made).
    var undamaged: SQLiteView?
    /// Commits the writer made after the demo database was created (the reset fixture: before
    /// and after its checkpoint).
    var commitsWritten: Int
    /// Commits SQLite's recovery keeps (in the main file or the WAL's committed prefix).
    var keptCommits: Int
    /// Rows per table that the committed prefix holds, by construction (tables the writer
    /// touched; the others keep the demo database's counts).
    var expectedRows: [String: Int]
    /// Whole frames in the `-wal`, and the index of the last commit frame SQLite keeps.
    var frames: Int
    var committedFrames: Int
    /// Index of the first invalid frame: nil when every whole frame is valid. `tornFrame`: the
    /// index the torn-off partial frame would have (a tool may name it or not).
    var firstInvalidFrame: Int?
    var tornFrame: Int?
    var trailingBytes: Int
    /// The break is damage (a checksum that fails where commits follow), not a reset or a torn
    /// tail; nil where the contract leaves it open (a crash mid-transaction breaks its own
    /// uncommitted tail with a checksum that fails, see `makeMidTransactionWAL`).
    var isDamage: Bool?
    var droppedCommits: Int
    /// Tables and indexes that own the pages of the intact frames after the break (the
    /// dropped commits), in the database as the committed prefix leaves it.
    var droppedTables: Set<String>
    /// The damaged frame, its page (from its header) and that page's owner.
    var damagedFrame: Int?
    var damagedPage: Int?
    var damagedPageTable: String?
    /// `abathur-walfix inspect`'s exit code under the contract.
    var inspectExit: Int32
    /// SHA-256 of db, `-wal`, `-shm` (by file name) as the fixture left them.
    var files: [String: String]
}

extension Sandbox {
    /// The rows the demo database starts with in `state` (see abathur-demo's populate).
    static let demoStateRows = 3
    static let scenarioDemoRows = 300

    /// Python defining `commit(i, agents=True)`: one transaction that inserts row `walfix-i`
    /// into `state` (its table page and both index pages: three frames) and, with `agents`,
    /// adds 1 to agent-1's budget (page 2, the lowest page, so the first frame of the
    /// transaction). Nothing grows, so no page is added and page 1 is never written.
    static let commitFunction = """
    def commit(i, agents=True):
        c.execute('BEGIN')
        c.execute('INSERT INTO state(key, value, updated_at) VALUES (?, ?, ?)', ('walfix-%d' % i, 'commit %d' % i, '2026-12-07 10:%02d:%02d' % (i // 60, i % 60)))
        if agents:
            c.execute("UPDATE agents SET budget = budget + 1 WHERE id = 'agent-1'")
        c.execute('COMMIT')

    """

    // MARK: - SQLite as the referee

    /// SQLite's view of the database at `path` (default: the live one) and its `-wal`, on a
    /// copy in a fresh scratch directory; `withWAL: false` copies the main file alone.
    func sqliteView(of path: String? = nil, withWAL: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws -> SQLiteView {
        let source = path ?? db
        let scratch = root + "/view-\(UUID().uuidString.prefix(8))"
        let script = """
        import sqlite3, sys, hashlib, json, os, shutil
        src, scratch, with_wal = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
        os.makedirs(scratch)
        copy = os.path.join(scratch, 'view.db')
        shutil.copyfile(src, copy)
        if with_wal and os.path.exists(src + '-wal'):
            shutil.copyfile(src + '-wal', copy + '-wal')
        out = {'errors': []}
        c = sqlite3.connect(copy, isolation_level=None)
        try:
            out['checkpoint'] = list(c.execute('PRAGMA wal_checkpoint').fetchone())
        except Exception as e:
            out['errors'].append('wal_checkpoint: %s' % e)
        try:
            out['integrity'] = [r[0] for r in c.execute('PRAGMA integrity_check')]
        except Exception as e:
            out['errors'].append('integrity_check: %s' % e)
        try:
            out['pages'] = c.execute('PRAGMA page_count').fetchone()[0]
            out['owners'] = {str(p): n for n, p in c.execute('SELECT name, pageno FROM dbstat')}
        except Exception as e:
            out['errors'].append('dbstat: %s' % e)
        counts, digest = {}, hashlib.sha256()
        try:
            tables = [r[0] for r in c.execute("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            for t in tables:
                c.text_factory = bytes
                rows = c.execute('SELECT * FROM "%s" ORDER BY rowid' % t).fetchall()
                c.text_factory = str
                counts[t] = len(rows)
                digest.update(('%s\\n' % t).encode())
                for r in rows:
                    digest.update((repr(r) + '\\n').encode())
            out['counts'] = counts
            out['sha256'] = digest.hexdigest()
        except Exception as e:
            out['errors'].append('read: %s' % e)
        c.close()
        shutil.rmtree(scratch)
        print(json.dumps(out))
        """
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", script, source, scratch, withWAL ? "1" : "0"])
        XCTAssertEqual(run.status, 0, "SQLite's view of \(source): \(run.stderr)", file: file, line: line)
        guard let object = try? JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any] else {
            XCTFail("SQLite's view of \(source): no JSON: \(run.stdout) \(run.stderr)", file: file, line: line)
            return SQLiteView(errors: ["no view"])
        }
        var view = SQLiteView()
        if let checkpoint = object["checkpoint"] as? [Int], checkpoint.count == 3 {
            (view.busy, view.log, view.checkpointed) = (checkpoint[0], checkpoint[1], checkpoint[2])
        }
        view.integrity = object["integrity"] as? [String] ?? []
        view.rowCounts = object["counts"] as? [String: Int] ?? [:]
        view.contentSHA256 = object["sha256"] as? String ?? ""
        view.pageCount = object["pages"] as? Int ?? 0
        for (page, name) in object["owners"] as? [String: String] ?? [:] { view.owners[Int(page)!] = name }
        view.errors = object["errors"] as? [String] ?? []
        return view
    }

    /// SHA-256 of the live db, `-wal` and `-shm` that exist, by file name.
    func liveDatabaseFiles() throws -> [String: String] {
        var result: [String: String] = [:]
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: db + suffix) {
            result["abathur.db" + suffix] = try sha256(db + suffix)
        }
        return result
    }

    /// Copies the live db and `-wal` (as they are now) into `dir`, for a later look at what the
    /// undamaged files held.
    func keepCopy(in name: String) throws -> String {
        let dir = root + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: db + suffix) {
            try FileManager.default.copyItem(atPath: db + suffix, toPath: dir + "/abathur.db" + suffix)
        }
        return dir + "/abathur.db"
    }

    /// XORs `mask` into the byte at `offset` of `path`.
    func flip(_ path: String, at offset: Int, mask: UInt8) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let byte = try XCTUnwrap(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: Data([byte ^ mask]))
    }

    // MARK: - The fixtures

    /// The demo database, then `body` (Python with `c` and `commit`) from a writer that dies
    /// with automatic checkpoints off.
    private func writeAndDie(_ body: String, file: StaticString, line: UInt) throws {
        try makeDemoDatabase(rows: Sandbox.scenarioDemoRows)
        try DyingWriter.run(db, Sandbox.commitFunction + body, file: file, line: line)
        for suffix in ["-wal", "-shm"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: db + suffix), "a hot \(suffix) was expected", file: file, line: line)
        }
    }

    /// The owners of `pages` in `view`, "(new pages)" past its end.
    private func owners(of pages: [UInt32], in view: SQLiteView) -> Set<String> {
        Set(pages.map { view.owners[Int($0)] ?? (Int($0) > view.pageCount ? "(new pages)" : "(free or unused)") })
    }

    private func checkAgainstSQLite(_ scenario: WALScenario, file: StaticString, line: UInt) {
        let view = scenario.view
        if scenario.kind != .foreign {
            XCTAssertTrue(view.isSound, "\(scenario.kind): SQLite's view is sound: \(view.errors) \(view.integrity)", file: file, line: line)
            for (table, rows) in scenario.expectedRows {
                XCTAssertEqual(view.rowCounts[table], rows, "\(scenario.kind): \(table) rows SQLite keeps", file: file, line: line)
            }
        }
        XCTAssertEqual(view.busy, 0, "\(scenario.kind)", file: file, line: line)
        XCTAssertEqual(view.log, scenario.committedFrames, "\(scenario.kind): SQLite's mxFrame is the last commit frame it keeps", file: file, line: line)
        XCTAssertEqual(view.checkpointed, view.log, "\(scenario.kind)", file: file, line: line)
    }

    /// 1. A clean WAL: eight committed transactions, four frames each.
    func makeCleanWAL(file: StaticString = #filePath, line: UInt = #line) throws -> WALScenario {
        try writeAndDie("for i in range(8): commit(i)\n", file: file, line: line)
        let wal = try WALLayout(db + "-wal")
        XCTAssertEqual(wal.commitFrames.count, 8, file: file, line: line)
        XCTAssertNil(wal.firstInvalidFrame, file: file, line: line)
        let scenario = WALScenario(
            kind: .clean, view: try sqliteView(file: file, line: line), undamaged: nil, commitsWritten: 8, keptCommits: 8,
            expectedRows: ["state": Sandbox.demoStateRows + 8, "tasks": Sandbox.scenarioDemoRows],
            frames: wal.frames.count, committedFrames: wal.commitFrames.last ?? 0, firstInvalidFrame: nil, tornFrame: nil,
            trailingBytes: 0, isDamage: false, droppedCommits: 0, droppedTables: [], inspectExit: 0, files: try liveDatabaseFiles())
        XCTAssertEqual(scenario.frames, scenario.committedFrames, file: file, line: line)
        checkAgainstSQLite(scenario, file: file, line: line)
        return scenario
    }

    /// 2. A crash mid-transaction: five commits, then a big INSERT inside BEGIN with a cache of
    /// eight pages, so pages spill into the WAL as frames with no commit; then the process dies.
    /// (SQLite 3.40 rewrites the page image of a frame of the open transaction in place, leaving
    /// its header's checksum as it was, and writes the frames after that with zero salts and
    /// checksums, to be fixed at commit: the tail breaks at the first rewritten frame, with a
    /// checksum that fails. Nothing committed follows it.)
    func makeMidTransactionWAL(file: StaticString = #filePath, line: UInt = #line) throws -> WALScenario {
        try writeAndDie("""
        for i in range(5): commit(i)
        c.execute('PRAGMA cache_size=8')
        c.execute('BEGIN')
        c.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO audit(task_id, agent_id, action, details, created_at) SELECT 1 + i % 300, 'agent-1', 'never committed', hex(randomblob(200)), datetime('2026-12-07', '+' || i || ' seconds') FROM n")

        """, file: file, line: line)
        let wal = try WALLayout(db + "-wal")
        XCTAssertEqual(wal.commitFrames.count, 5, file: file, line: line)
        let committed = wal.commitFrames.last ?? 0
        XCTAssertGreaterThan(wal.frames.count, committed + 20, "the open transaction spilled frames into the WAL", file: file, line: line)
        if let invalid = wal.firstInvalidFrame { XCTAssertGreaterThan(invalid, committed, file: file, line: line) }
        let scenario = WALScenario(
            kind: .midTransaction, view: try sqliteView(file: file, line: line), undamaged: nil, commitsWritten: 5, keptCommits: 5,
            expectedRows: ["state": Sandbox.demoStateRows + 5, "audit": 2 * Sandbox.scenarioDemoRows],
            frames: wal.frames.count, committedFrames: committed, firstInvalidFrame: wal.firstInvalidFrame, tornFrame: nil,
            trailingBytes: 0, isDamage: nil, droppedCommits: 0, droppedTables: [], inspectExit: 0, files: try liveDatabaseFiles())
        checkAgainstSQLite(scenario, file: file, line: line)
        return scenario
    }

    /// 3. A reset after a RESTART checkpoint: ten commits, `PRAGMA wal_checkpoint(RESTART)`
    /// (all of them copied into the main file), then three commits, which restart the WAL with
    /// new salts: the stale frames of the ten follow the three's.
    func makeResetWAL(file: StaticString = #filePath, line: UInt = #line) throws -> WALScenario {
        try writeAndDie("""
        for i in range(10): commit(i)
        busy, log, done = c.execute('PRAGMA wal_checkpoint(RESTART)').fetchone()
        assert busy == 0 and log == done, (busy, log, done)
        for i in range(10, 13): commit(i)

        """, file: file, line: line)
        let wal = try WALLayout(db + "-wal")
        XCTAssertEqual(wal.commitFrames.count, 3, file: file, line: line)
        let committed = wal.commitFrames.last ?? 0
        XCTAssertEqual(wal.firstForeignSaltFrame, committed + 1, "stale frames of the old salt follow the new commits", file: file, line: line)
        XCTAssertEqual(wal.firstInvalidFrame, committed + 1, file: file, line: line)
        XCTAssertGreaterThan(wal.frames.count, committed, file: file, line: line)
        let scenario = WALScenario(
            kind: .reset, view: try sqliteView(file: file, line: line), undamaged: nil, commitsWritten: 13, keptCommits: 13,
            expectedRows: ["state": Sandbox.demoStateRows + 13],
            frames: wal.frames.count, committedFrames: committed, firstInvalidFrame: committed + 1, tornFrame: nil,
            trailingBytes: 0, isDamage: false, droppedCommits: 0, droppedTables: [], inspectExit: 0, files: try liveDatabaseFiles())
        checkAgainstSQLite(scenario, file: file, line: line)
        return scenario
    }

    /// 4. A torn tail: eight commits, then the `-wal` cut in the middle of its last frame (the
    /// commit frame of the eighth): seven commits are kept, the eighth's first frames stay as an
    /// uncommitted tail.
    func makeTornTailWAL(file: StaticString = #filePath, line: UInt = #line) throws -> WALScenario {
        try writeAndDie("for i in range(8): commit(i)\n", file: file, line: line)
        let whole = try WALLayout(db + "-wal")
        let cut = whole.frameSize / 2
        let size = 32 + whole.frames.count * whole.frameSize - cut
        XCTAssertEqual(truncate(db + "-wal", off_t(size)), 0, file: file, line: line)
        let wal = try WALLayout(db + "-wal")
        XCTAssertEqual(wal.frames.count, whole.frames.count - 1, file: file, line: line)
        XCTAssertEqual(wal.commitFrames.count, 7, file: file, line: line)
        XCTAssertNil(wal.firstInvalidFrame, "every whole frame is valid; the torn one is not whole", file: file, line: line)
        let scenario = WALScenario(
            kind: .tornTail, view: try sqliteView(file: file, line: line), undamaged: nil, commitsWritten: 8, keptCommits: 7,
            expectedRows: ["state": Sandbox.demoStateRows + 7],
            frames: wal.frames.count, committedFrames: wal.commitFrames.last ?? 0, firstInvalidFrame: nil, tornFrame: wal.frames.count + 1,
            trailingBytes: whole.frameSize - cut, isDamage: false, droppedCommits: 0, droppedTables: [], inspectExit: 0,
            files: try liveDatabaseFiles())
        checkAgainstSQLite(scenario, file: file, line: line)
        return scenario
    }

    /// 5. A bit flipped in the page data of the first frame of the seventh of twelve commits.
    /// `superseded`: every commit rewrites agent-1's budget, so that page (2) recurs and the
    /// damaged image is overwritten by the eighth commit. Otherwise only the seventh commit
    /// writes page 2: its damaged image is never written again. Either way SQLite keeps six
    /// commits and silently drops six.
    func makeFlippedWAL(superseded: Bool, file: StaticString = #filePath, line: UInt = #line) throws -> WALScenario {
        try writeAndDie(superseded ? "for i in range(12): commit(i)\n" : "for i in range(12): commit(i, agents=(i == 6))\n",
                        file: file, line: line)
        let undamagedCopy = try keepCopy(in: "undamaged")
        let undamaged = try sqliteView(of: undamagedCopy, file: file, line: line)
        let wal = try WALLayout(db + "-wal")
        XCTAssertEqual(wal.commitFrames.count, 12, file: file, line: line)
        let damaged = wal.commitFrames[5] + 1
        XCTAssertEqual(wal.frames[damaged - 1].page, 2, "the seventh commit's first frame is agents' page", file: file, line: line)
        XCTAssertEqual(wal.frames[damaged - 1].commit, 0, "and not its commit frame", file: file, line: line)
        // Byte 1000 of the page image.
        try flip(db + "-wal", at: wal.offset(ofFrame: damaged) + 24 + 1000, mask: 0x04)
        return try damagedScenario(superseded ? .supersededFlip : .lastingFlip, wal: wal, damaged: damaged, undamaged: undamaged,
                                   file: file, line: line)
    }

    /// 6. A damaged frame header: the commit-size field of the first frame of the seventh of
    /// twelve commits (a frame with no commit) gets a bit set, so its checksum fails.
    func makeDamagedHeaderWAL(file: StaticString = #filePath, line: UInt = #line) throws -> WALScenario {
        try writeAndDie("for i in range(12): commit(i)\n", file: file, line: line)
        let undamaged = try sqliteView(of: try keepCopy(in: "undamaged"), file: file, line: line)
        let wal = try WALLayout(db + "-wal")
        XCTAssertEqual(wal.commitFrames.count, 12, file: file, line: line)
        let damaged = wal.commitFrames[5] + 1
        XCTAssertEqual(wal.frames[damaged - 1].commit, 0, file: file, line: line)
        try flip(db + "-wal", at: wal.offset(ofFrame: damaged) + 7, mask: 0x01)
        return try damagedScenario(.damagedHeader, wal: wal, damaged: damaged, undamaged: undamaged, file: file, line: line)
    }

    private func damagedScenario(_ kind: WALScenario.Kind, wal: WALLayout, damaged: Int, undamaged: SQLiteView,
                                 file: StaticString, line: UInt) throws -> WALScenario {
        XCTAssertNil(wal.firstInvalidFrame, "valid before the damage", file: file, line: line)
        XCTAssertEqual(try WALLayout(db + "-wal").firstInvalidFrame, damaged, "the damaged frame fails its checksum", file: file, line: line)
        let view = try sqliteView(file: file, line: line)
        let after = wal.frames[damaged...].map(\.page)
        let damagedPage = Int(wal.frames[damaged - 1].page)
        let scenario = WALScenario(
            kind: kind, view: view, undamaged: undamaged, commitsWritten: 12, keptCommits: 6,
            expectedRows: ["state": Sandbox.demoStateRows + 6],
            frames: wal.frames.count, committedFrames: wal.commitFrames[5], firstInvalidFrame: damaged, tornFrame: nil,
            trailingBytes: 0, isDamage: true, droppedCommits: 6, droppedTables: owners(of: after, in: view),
            damagedFrame: damaged, damagedPage: damagedPage, damagedPageTable: view.owners[damagedPage], inspectExit: 4,
            files: try liveDatabaseFiles())
        XCTAssertEqual(undamaged.rowCounts["state"], Sandbox.demoStateRows + 12, file: file, line: line)
        XCTAssertTrue(undamaged.isSound, file: file, line: line)
        XCTAssertEqual(scenario.damagedPageTable, "agents", file: file, line: line)
        XCTAssertTrue(scenario.droppedTables.isSuperset(of: ["state", "sqlite_autoindex_state_1", "idx_state_updated"]),
                      "\(scenario.droppedTables)", file: file, line: line)
        XCTAssertNotEqual(view.contentSHA256, undamaged.contentSHA256, "SQLite drops commits", file: file, line: line)
        checkAgainstSQLite(scenario, file: file, line: line)
        return scenario
    }

    /// 7. A WAL from another generation of the file: the demo database is copied aside; a
    /// writer deletes a third of the tasks, adds audit rows and checkpoints (TRUNCATE), so the
    /// main file moves on; then it commits more (a hot WAL: tasks retitled, five commits) and
    /// dies. The old copy is put back under the name, beside the new `-wal` and `-shm`. Salts
    /// and checksums are valid; laid over the old file, the WAL breaks it.
    func makeForeignGenerationWAL(file: StaticString = #filePath, line: UInt = #line) throws -> WALScenario {
        try makeDemoDatabase(rows: Sandbox.scenarioDemoRows)
        let old = root + "/generation-1.db"
        try FileManager.default.copyItem(atPath: db, toPath: old)
        try DyingWriter.run(db, Sandbox.commitFunction + """
        c.execute('DELETE FROM tasks WHERE id % 3 = 0')
        c.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) INSERT INTO audit(task_id, agent_id, action, details, created_at) SELECT 1 + i % 300, 'agent-2', 'next generation', hex(randomblob(40)), datetime('2026-12-07', '+' || i || ' seconds') FROM n")
        busy, log, done = c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()
        assert busy == 0 and log == done, (busy, log, done)
        c.execute("UPDATE tasks SET status = 'hot' WHERE id % 3 = 1")
        for i in range(5): commit(i)

        """, file: file, line: line)
        XCTAssertEqual(rename(old, db), 0, file: file, line: line)
        let wal = try WALLayout(db + "-wal")
        XCTAssertEqual(wal.commitFrames.count, 6, file: file, line: line)
        XCTAssertNil(wal.firstForeignSaltFrame, file: file, line: line)
        XCTAssertNil(wal.firstInvalidFrame, "salts and checksums valid", file: file, line: line)
        let view = try sqliteView(file: file, line: line)
        let alone = try sqliteView(withWAL: false, file: file, line: line)
        XCTAssertTrue(alone.isSound, "the old generation alone is sound: \(alone.integrity)", file: file, line: line)
        XCTAssertFalse(view.isSound, "laid over the old generation, the WAL breaks it", file: file, line: line)
        let scenario = WALScenario(
            kind: .foreign, view: view, undamaged: nil, commitsWritten: 6, keptCommits: 6, expectedRows: [:],
            frames: wal.frames.count, committedFrames: wal.commitFrames.last ?? 0, firstInvalidFrame: nil, tornFrame: nil,
            trailingBytes: 0, isDamage: false, droppedCommits: 0, droppedTables: [], inspectExit: 4, files: try liveDatabaseFiles())
        XCTAssertEqual(scenario.frames, scenario.committedFrames, file: file, line: line)
        checkAgainstSQLite(scenario, file: file, line: line)
        return scenario
    }

    /// Every fixture, by kind.
    func makeScenario(_ kind: WALScenario.Kind, file: StaticString = #filePath, line: UInt = #line) throws -> WALScenario {
        switch kind {
        case .clean: return try makeCleanWAL(file: file, line: line)
        case .midTransaction: return try makeMidTransactionWAL(file: file, line: line)
        case .reset: return try makeResetWAL(file: file, line: line)
        case .tornTail: return try makeTornTailWAL(file: file, line: line)
        case .supersededFlip: return try makeFlippedWAL(superseded: true, file: file, line: line)
        case .lastingFlip: return try makeFlippedWAL(superseded: false, file: file, line: line)
        case .damagedHeader: return try makeDamagedHeaderWAL(file: file, line: line)
        case .foreign: return try makeForeignGenerationWAL(file: file, line: line)
        }
    }
}

// MARK: - Running abathur-walfix

extension Sandbox {
    /// `abathur-walfix SUBCOMMAND ARGS --db DB --backup-dir BACKUPS`, with no units and no
    /// health check configured.
    @discardableResult
    func walfix(_ args: [String], env: [String: String] = [:]) throws -> Run {
        var environment = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]
        for (key, value) in env { environment[key] = value }
        return try run("abathur-walfix", args + ["--db", db, "--backup-dir", backups], env: environment)
    }

    /// The `--json` document of a run, and its "result" object.
    func walfixJSON(_ run: Run, file: StaticString = #filePath, line: UInt = #line) throws -> (document: [String: Any], result: [String: Any]) {
        let object = try XCTUnwrap(try? JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any],
                                   "not a JSON document: \(run.stdout) \(run.stderr)", file: file, line: line)
        let result = try XCTUnwrap(object["result"] as? [String: Any], "no result: \(run.stdout)", file: file, line: line)
        return (object, result)
    }

    /// The forensic copies repair made: BACKUP_DIR/forensic/*-walfix/, full paths.
    func forensicCopies() throws -> [String] {
        let dir = backups + "/forensic"
        guard FileManager.default.fileExists(atPath: dir) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix("-walfix") }.sorted().map { dir + "/" + $0 }
    }

    /// The aside directories in the live directory, full paths.
    func asideDirectories() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: liveDir).filter { $0.hasPrefix(".abathur-aside-") }.sorted().map { liveDir + "/" + $0 }
    }

    /// SHA-256 of every regular file in `dir`, as a multiset of hashes.
    func hashes(in dir: String) throws -> [String] {
        try fingerprint(dir).values.filter { $0 != "dir" && !$0.hasPrefix("link->") }.sorted()
    }
}

/// A real SQLite reader in another process: it opens the database, BEGINs, reads a table (so
/// it holds a read transaction and a read mark on the `-shm`), says so in a file, then blocks
/// reading its stdin until it is killed.
final class SnapshotReader {
    let process = Process()
    private let input = Pipe()
    var pid: Int32 { process.processIdentifier }

    init(_ box: Sandbox, file: StaticString = #filePath, line: UInt = #line) throws {
        let ready = box.root + "/reader-ready-\(UUID().uuidString.prefix(8))"
        let script = """
        import sqlite3, sys, os
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute('BEGIN')
        n = c.execute('SELECT count(*) FROM tasks').fetchone()[0]
        with open(sys.argv[2] + '.tmp', 'w') as f:
            f.write(str(n))
        os.rename(sys.argv[2] + '.tmp', sys.argv[2])
        sys.stdin.read()
        """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, box.db, ready]
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: ready) && process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)  // polling for the reader's own signal
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: ready), "the reader never said it was reading", file: file, line: line)
        XCTAssertTrue(process.isRunning, "the reader died", file: file, line: line)
    }

    /// SIGKILL, and wait for it.
    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? input.fileHandleForWriting.close()
    }

    deinit { kill() }
}
