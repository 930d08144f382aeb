import Foundation
import XCTest
@testable import AbathurTestSupport

/// What the salvage tests (`abathur-integrity --recover`, issue 13) share: real demo databases,
/// real damage written into the file with python3, and every comparison made on copies
/// opened by python3's sqlite3 module (opening a live file would checkpoint it).
enum SalvageFixtures {
    static let units = "abathur-api abathur-workers abathur-document-sync"
    static let applicationId = "1094865992"
    static let userVersion = "9"
    static let lockName = ".abathur.db.abathur-lock"

    /// Every table's rows of the database at `path` (opened as it is: pass copies), as
    /// table → rowid → the row's values (Python's repr, types included), plus the pragmas.
    struct Contents: Equatable {
        var tables: [String: [String: String]]
        var userVersion: Int
        var applicationId: Int

        func rowids(_ table: String) -> Set<String> { Set(tables[table]?.keys.map { $0 } ?? []) }
        var rowCount: Int { tables.values.reduce(0) { $0 + $1.count } }
    }

    static let dumpScript = """
    import json, sqlite3, sys
    c = sqlite3.connect(sys.argv[1])
    out = {"tables": {}}
    names = [n for (n,) in c.execute("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    # Text as bytes: the demo's checkpoints.data is text that is not UTF-8 (zeroblob || randomblob).
    c.text_factory = bytes
    for name in names:
        if name in sys.argv[2:]:
            continue
        rows = {}
        for r in c.execute('SELECT rowid, * FROM "%s"' % name.replace('"', '""')):
            rows[str(r[0])] = repr(r[1:])
        out["tables"][name] = rows
    out["user_version"] = c.execute("PRAGMA user_version").fetchone()[0]
    out["application_id"] = c.execute("PRAGMA application_id").fetchone()[0]
    print(json.dumps(out))
    """

    static func python(_ script: String, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", script] + args)
        XCTAssertEqual(run.status, 0, "python3: \(run.stderr)", file: file, line: line)
        return run
    }

    /// `skipping`: tables left out (a damaged table SQLite cannot scan).
    static func contents(_ path: String, skipping: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> Contents {
        let run = try python(dumpScript, [path] + skipping, file: file, line: line)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], run.stdout, file: file, line: line)
        return Contents(tables: try XCTUnwrap(object["tables"] as? [String: [String: String]], file: file, line: line),
                        userVersion: try XCTUnwrap(object["user_version"] as? Int, file: file, line: line),
                        applicationId: try XCTUnwrap(object["application_id"] as? Int, file: file, line: line))
    }

    /// A copy of `path` and its `-wal` (if any) in a fresh directory under `box.root`; SQLite
    /// only ever opens the copy.
    static func copy(_ box: Sandbox, of path: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let dir = box.root + "/inspect-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let copy = dir + "/copy.db"
        XCTAssertEqual(try Sandbox.execute("/bin/cp", [path, copy]).status, 0, file: file, line: line)
        if FileManager.default.fileExists(atPath: path + "-wal") {
            XCTAssertEqual(try Sandbox.execute("/bin/cp", [path + "-wal", copy + "-wal"]).status, 0, file: file, line: line)
        }
        return copy
    }

    /// What SQLite reads in the database at `path` (through a copy).
    static func contents(_ box: Sandbox, of path: String, skipping: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> Contents {
        try contents(try copy(box, of: path, file: file, line: line), skipping: skipping, file: file, line: line)
    }

    static func sqlite(_ path: String, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try Sandbox.execute("/usr/bin/sqlite3", [path, sql])
        XCTAssertEqual(run.status, 0, "sqlite3 \(path) \(sql): \(run.stderr)", file: file, line: line)
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// One table leaf page of `table` zeroed in the closed database at `path`: the middle one
    /// of its leaf pages, as dbstat lists them on a copy. Returns the page number, its page
    /// size and the rowids its cells held (read from the page before it was zeroed).
    struct ZeroedPage {
        var page: Int
        var pageSize: Int
        var rowids: Set<String>
    }

    static let zeroLeafScript = """
    import json, os, shutil, sqlite3, sys
    path, table, probe = sys.argv[1], sys.argv[2], sys.argv[3]
    assert not os.path.exists(path + "-wal"), "the database must be closed and checkpointed"
    shutil.copyfile(path, probe)
    c = sqlite3.connect(probe)
    leaves = c.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,)).fetchall()
    c.close()
    assert len(leaves) >= 3, leaves
    page = leaves[len(leaves) // 2][0]
    data = open(path, "rb").read()
    size = int.from_bytes(data[16:18], "big")
    size = 65536 if size == 1 else size
    body = data[(page - 1) * size:page * size]
    assert body[0] == 13, "a table leaf page"
    def varint(b, i):
        v = 0
        for k in range(8):
            x = b[i + k]
            v = (v << 7) | (x & 0x7f)
            if x < 0x80:
                return v, i + k + 1
        return (v << 8) | b[i + 8], i + 9
    rowids = []
    for k in range(int.from_bytes(body[3:5], "big")):
        offset = int.from_bytes(body[8 + 2 * k:10 + 2 * k], "big")
        _, j = varint(body, offset)
        rowids.append(varint(body, j)[0])
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(bytes(size))
        f.flush()
        os.fsync(f.fileno())
    print(json.dumps({"page": page, "page_size": size, "rowids": rowids}))
    """

    static func zeroLeafPage(_ box: Sandbox, of table: String, in path: String, file: StaticString = #filePath, line: UInt = #line) throws -> ZeroedPage {
        let probe = box.root + "/probe-\(UUID().uuidString.prefix(8)).db"
        defer { try? FileManager.default.removeItem(atPath: probe) }
        let run = try python(zeroLeafScript, [path, table, probe], file: file, line: line)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], run.stdout, file: file, line: line)
        let rowids = try XCTUnwrap(object["rowids"] as? [Int], file: file, line: line)
        XCTAssertFalse(rowids.isEmpty, "the zeroed page held rows", file: file, line: line)
        return ZeroedPage(page: try XCTUnwrap(object["page"] as? Int, file: file, line: line),
                          pageSize: try XCTUnwrap(object["page_size"] as? Int, file: file, line: line),
                          rowids: Set(rowids.map(String.init)))
    }

    /// Zeroes page `page` (1-based) of the file at `path` in place.
    static func zeroPage(_ page: Int, pageSize: Int, of path: String) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64((page - 1) * pageSize))
        handle.write(Data(count: pageSize))
        try handle.synchronize()
    }

    static func pageSize(of path: String) throws -> Int {
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: path))
        defer { try? handle.close() }
        let header = handle.readData(ofLength: 18)
        let raw = Int(header[16]) << 8 | Int(header[17])
        return raw == 1 ? 65536 : raw
    }

    /// `salvaged` holds `original` with the rows on the zeroed page gone from `table` at most:
    /// every other table equal row for row; in `table` no row that the original does not have
    /// (no row invented), every row with the original's values, and every row that was not on
    /// the zeroed page.
    static func assertSalvaged(_ salvaged: Contents, from original: Contents, losing zeroed: ZeroedPage, of table: String,
                               _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        for (name, rows) in original.tables where name != table {
            XCTAssertEqual(salvaged.tables[name], rows, "\(context): \(name) row for row as it was", file: file, line: line)
        }
        XCTAssertEqual(Set(salvaged.tables.keys).subtracting(["lost_and_found"]), Set(original.tables.keys),
                       "\(context): the same tables", file: file, line: line)
        let got = salvaged.tables[table] ?? [:], had = original.tables[table] ?? [:]
        let invented = Set(got.keys).subtracting(had.keys)
        XCTAssertEqual(invented, [], "\(context): \(table): rows the original never had", file: file, line: line)
        let altered = got.filter { had[$0.key] != nil && had[$0.key] != $0.value }.map(\.key)
        XCTAssertEqual(altered, [], "\(context): \(table): rows with values the original did not have", file: file, line: line)
        let lost = Set(had.keys).subtracting(got.keys).subtracting(zeroed.rowids)
        XCTAssertEqual(lost, [], "\(context): \(table): rows lost that were not on the zeroed page \(zeroed.page)", file: file, line: line)
        XCTAssertEqual(salvaged.userVersion, original.userVersion, "\(context): user_version", file: file, line: line)
        XCTAssertEqual(salvaged.applicationId, original.applicationId, "\(context): application_id", file: file, line: line)
    }

    /// Temp files of ours left in `directories`.
    static func leftovers(_ directories: [String]) throws -> [String] {
        var found: [String] = []
        for dir in directories where FileManager.default.fileExists(atPath: dir) {
            found += try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".abathur-tmp-") }.map { dir + "/" + $0 }
        }
        return found
    }

    /// The `result` object of a `--json` run, after checking stdout is one JSON document.
    static func result(_ run: Run, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any],
                                     "stdout is one JSON document: \(run.stdout)", file: file, line: line)
        return try XCTUnwrap(document["result"] as? [String: Any], "\(document)", file: file, line: line)
    }
}

/// `abathur-integrity --recover OUT [PATH]`, the plain tool contract of salvage-cli.md, black
/// box: real demo databases, real hot WALs left by a writer that exited without closing, real
/// damage, the source files byte for byte, the exit codes, the JSON document, temp files.
final class SalvageToolTests: XCTestCase {
    typealias F = SalvageFixtures

    struct World {
        var box: Sandbox
        var out: String
        var outDir: String { box.root + "/out" }
        var tmp: String { box.root + "/tmp" }
        var env: [String: String] { ["ABATHUR_TEMP_DIR": tmp, "ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""] }
    }

    func makeWorld(_ name: String = #function) throws -> World {
        let box = try Sandbox(name)
        for dir in [box.root + "/out", box.root + "/tmp"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        return World(box: box, out: box.root + "/out/salvaged.db")
    }

    /// `abathur-integrity --recover OUT [PATH] ARGS --db DB --backup-dir DIR`.
    @discardableResult
    func recover(_ world: World, _ path: String? = nil, out: String? = nil, _ args: [String] = []) throws -> Run {
        try world.box.run("abathur-integrity", ["--recover", out ?? world.out] + (path.map { [$0] } ?? []) + args
                          + ["--db", world.box.db, "--backup-dir", world.box.backups], env: world.env)
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// The live directory byte for byte, without the tool's lock file (the only file a run
    /// may create there).
    func liveFiles(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.liveDir).filter { $0.key != F.lockName }
    }

    /// No temp file of ours in OUT's directory, temp_dir, the live directory or the backup
    /// directory (and its forensic copies).
    func assertNoTempFiles(_ world: World, _ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let box = world.box
        var dirs = [world.outDir, world.tmp, box.liveDir, box.backups, box.backups + "/forensic"]
        if exists(box.backups + "/forensic") {
            dirs += try FileManager.default.contentsOfDirectory(atPath: box.backups + "/forensic").map { box.backups + "/forensic/" + $0 }
        }
        let left = try F.leftovers(dirs)
        XCTAssertEqual(left, [], "\(context): no temp file left", file: file, line: line)
        let inTemp = try FileManager.default.contentsOfDirectory(atPath: world.tmp)
        XCTAssertEqual(inTemp, [], "\(context): temp_dir is empty again", file: file, line: line)
        // Each run is judged on what it left: the next check starts clean.
        for path in left + inTemp.map({ world.tmp + "/" + $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }

    /// The objects SQLite lists, without its automatic indexes: type, name, table, SQL.
    func objects(_ path: String) throws -> String {
        try F.sqlite(path, "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_autoindex_%' ORDER BY type, name")
    }

    // MARK: - An undamaged database

    /// The live database, undamaged, with a backup of the same state: OUT holds every table
    /// row for row (rowids kept), the same tables and indexes, user_version and
    /// application_id, passes integrity_check and foreign_key_check; exit 0 (nothing damaged,
    /// nothing in lost_and_found, nothing differs from the backup). The live files are
    /// byte-identical, the forensic copy is in BACKUP_DIR/forensic, no temp file is left.
    func testAnUndamagedDatabaseSalvagesToAnEqualOne() throws {
        let world = try makeWorld()
        let box = world.box
        try box.makeDemoDatabase(rows: 300)
        let backup = try box.takeBackup()
        let original = try F.contents(box, of: box.db)
        let originalObjects = try objects(try F.copy(box, of: box.db))
        let live = try liveFiles(box)

        let run = try recover(world, nil, ["--json"])
        XCTAssertEqual(run.status, 0, "an undamaged database salvages cleanly: \(run.stderr)\n\(run.stdout)")
        try assertNoTempFiles(world, "undamaged")
        XCTAssertEqual(try liveFiles(box), live, "the live files byte-identical")
        XCTAssertTrue(exists(world.out))

        let salvaged = try F.contents(world.out)
        XCTAssertEqual(salvaged, original, "every table row for row, rowids, user_version and application_id kept")
        XCTAssertEqual(try F.sqlite(world.out, "PRAGMA user_version"), F.userVersion)
        XCTAssertEqual(try F.sqlite(world.out, "PRAGMA application_id"), F.applicationId)
        XCTAssertEqual(try F.sqlite(world.out, "PRAGMA integrity_check"), "ok")
        XCTAssertEqual(try F.sqlite(world.out, "PRAGMA foreign_key_check"), "")
        XCTAssertEqual(try objects(world.out), originalObjects, "the same tables and indexes")

        let result = try F.result(run)
        XCTAssertEqual(result["result"] as? String, "recovered", "\(result)")
        XCTAssertEqual(result["applied"] as? Bool, false)
        XCTAssertEqual(result["schema_from"] as? String, "database")
        XCTAssertEqual(result["problems"] as? Int, 0, "\(result)")
        XCTAssertEqual(result["lost_and_found"] as? Int, 0)
        XCTAssertEqual(result["backup"] as? String, backup)
        XCTAssertEqual(result["output"] as? String, world.out)
        XCTAssertEqual(result["source"] as? String, box.db)
        let tables = try XCTUnwrap(result["tables"] as? [[String: Any]], "\(result)")
        XCTAssertEqual(Set(tables.compactMap { $0["name"] as? String }), Set(original.tables.keys))
        for table in tables {
            let name = try XCTUnwrap(table["name"] as? String)
            XCTAssertEqual(table["recovered"] as? Int, original.tables[name]?.count, "\(name)")
            XCTAssertEqual(table["in_backup"] as? Int, original.tables[name]?.count, "\(name)")
            for key in ["altered", "missing", "not_in_backup", "in_lost_and_found_only", "to_lost_and_found", "duplicates", "carved"] {
                XCTAssertEqual(table[key] as? Int, 0, "\(name).\(key): \(table)")
            }
        }
        let checks = try XCTUnwrap(result["checks"] as? [[String: Any]], "\(result)")
        XCTAssertFalse(checks.isEmpty)
        for check in checks { XCTAssertEqual(check["ok"] as? Bool, true, "\(check)") }

        // The forensic copy: BACKUP_DIR/forensic/salvage-*, the live files byte for byte.
        let forensic = try XCTUnwrap(result["forensic_copy"] as? String, "\(result)")
        XCTAssertTrue(forensic.hasPrefix(box.backups + "/forensic/"), forensic)
        XCTAssertTrue(URL(fileURLWithPath: forensic).lastPathComponent.contains("salvage"), forensic)
        XCTAssertEqual(try box.fingerprint(forensic), live, "the forensic copy holds the live files byte for byte")

        // The same database given as PATH: a scratch copy in temp_dir, removed; no forensic copy.
        let path = box.root + "/given.db"
        XCTAssertEqual(try Sandbox.execute("/bin/cp", [box.db, path]).status, 0)
        let given = try box.sha256(path)
        let forensicBefore = try FileManager.default.contentsOfDirectory(atPath: box.backups + "/forensic")
        let other = box.root + "/out/from-path.db"
        let byPath = try recover(world, path, out: other, ["--json"])
        XCTAssertEqual(byPath.status, 0, byPath.stderr)
        XCTAssertEqual(try box.sha256(path), given, "PATH byte-identical")
        XCTAssertFalse(exists(path + "-wal") || exists(path + "-shm"), "nothing beside PATH")
        XCTAssertNil(try F.result(byPath)["forensic_copy"] as? String)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.backups + "/forensic"), forensicBefore)
        try assertNoTempFiles(world, "PATH")
        XCTAssertEqual(try F.contents(other), original)
    }

    // MARK: - A hot WAL

    /// A writer that exited without closing leaves 50 commits in a hot `-wal`: the salvage
    /// lays them over the pages (every writer row is in OUT, whose invariants hold), the
    /// live db, `-wal` and `-shm` are byte-identical afterwards, the forensic copy holds all
    /// three, the JSON says the WAL was used.
    func testAHotWALIsUsedAndTheLiveFilesStayByteIdentical() throws {
        let world = try makeWorld()
        let box = world.box
        try box.makeDemoDatabase(rows: 200)
        let writer = try box.demo(["write", box.db, "--commits", "50", "--crash"])
        XCTAssertEqual(writer.status, 0, writer.stderr)
        XCTAssertEqual(writer.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "50")
        let live = try liveFiles(box)
        XCTAssertEqual(Set(live.keys), ["abathur.db", "abathur.db-wal", "abathur.db-shm"], "a hot WAL")
        let original = try F.contents(box, of: box.db)
        XCTAssertEqual(original.tables["tasks"]?.values.filter { $0.contains("'writer task'") }.count, 50, "the writer's rows, through SQLite")

        let run = try recover(world, nil, ["--json"])
        XCTAssertEqual(run.status, 0, "a hot WAL is not damage: \(run.stderr)\n\(run.stdout)")
        XCTAssertEqual(try liveFiles(box), live, "db, -wal and -shm byte-identical after the run")
        try assertNoTempFiles(world, "hot WAL")

        let result = try F.result(run)
        let wal = try XCTUnwrap(result["wal"] as? [String: Any], "\(result)")
        XCTAssertEqual(wal["present"] as? Bool, true, "\(wal)")
        XCTAssertEqual(wal["used"] as? Bool, true, "\(wal)")
        XCTAssertGreaterThan(wal["committed_frames"] as? Int ?? 0, 0, "\(wal)")
        XCTAssertNotNil(wal["detail"] as? String)
        let forensic = try XCTUnwrap(result["forensic_copy"] as? String)
        XCTAssertEqual(try box.fingerprint(forensic), live, "the forensic copy: db, -wal and -shm as they were")

        XCTAssertEqual(try F.contents(world.out), original, "OUT holds what SQLite reads through the WAL, row for row")
        XCTAssertEqual(try F.sqlite(world.out, "SELECT count(*) FROM tasks WHERE writer_seq IS NOT NULL"), "50")
        XCTAssertEqual(try F.sqlite(world.out, "SELECT value FROM state WHERE key = 'writer_seq'"), "50")
        XCTAssertEqual(try box.demo(["check", world.out]).status, 0, "the writer's invariants hold in OUT")
        XCTAssertEqual(try F.sqlite(world.out, "PRAGMA integrity_check"), "ok")
    }

    // MARK: - Refusals and failures

    /// OUT that already exists: exit 7, OUT byte-identical, nothing else written; with the
    /// live database and with a PATH.
    func testAnOUTThatExistsIsRefusedAndUntouched() throws {
        let world = try makeWorld()
        let box = world.box
        try box.makeDemoDatabase(rows: 100)
        try Data("not to be replaced\n".utf8).write(to: URL(fileURLWithPath: world.out))
        let hash = try box.sha256(world.out)
        let live = try liveFiles(box)
        for path in [nil, box.db] as [String?] {
            let run = try recover(world, path)
            XCTAssertEqual(run.status, 7, "\(path ?? "live"): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(world.out), run.stderr)
            XCTAssertEqual(try box.sha256(world.out), hash, "OUT untouched")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: world.outDir), ["salvaged.db"])
            XCTAssertEqual(try liveFiles(box), live)
            XCTAssertFalse(exists(box.backups + "/forensic"), "nothing copied before the refusal")
            try assertNoTempFiles(world, "OUT exists")
        }
    }

    /// OUT's filesystem fills while the rows are written (a 1 MiB tmpfs, a database of several
    /// MiB): exit 6 (no space), one diagnostic naming the file, no OUT and no temp file left
    /// there, the source byte-identical.
    func testAFullDiskUnderOUTIsNoSpaceAndLeavesNothing() throws {
        let world = try makeWorld()
        let box = world.box
        try box.makeDemoDatabase(rows: 3000)
        let small = box.root + "/small"
        let mount = try SmallFilesystem.tmpfs(at: small, size: "1m")
        defer { mount.unmount() }
        let live = try liveFiles(box)
        let run = try recover(world, box.db, out: small + "/salvaged.db")
        XCTAssertEqual(run.status, 6, run.stderr)
        XCTAssertTrue(run.stderr.contains(small), "the diagnostic names the file: \(run.stderr)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: small), [], "no OUT, no temp file")
        XCTAssertEqual(try liveFiles(box), live)
        try assertNoTempFiles(world, "full disk")
    }

    /// A source that does not exist: exit 8, no OUT. A directory as source: exit 7, no OUT.
    func testAMissingSourceAndADirectorySource() throws {
        let world = try makeWorld()
        let box = world.box
        let missing = try recover(world, box.root + "/no-such.db")
        XCTAssertEqual(missing.status, 8, missing.stderr)
        XCTAssertTrue(missing.stderr.contains(box.root + "/no-such.db"), missing.stderr)
        XCTAssertFalse(exists(world.out))
        XCTAssertFalse(exists(box.root + "/no-such.db"), "nothing created at the source's path")
        try assertNoTempFiles(world, "missing")

        // The live form with no live database.
        let noLive = try recover(world)
        XCTAssertEqual(noLive.status, 8, noLive.stderr)
        XCTAssertFalse(exists(world.out))
        XCTAssertFalse(exists(box.db))
        try assertNoTempFiles(world, "no live database")

        let dir = box.root + "/a-directory"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let directory = try recover(world, dir)
        XCTAssertEqual(directory.status, 7, directory.stderr)
        XCTAssertFalse(exists(world.out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        try assertNoTempFiles(world, "directory")
    }

    /// An empty file, a text file and 64 KiB of random bytes (32 fixed seeds, Python's
    /// Mersenne Twister, so every run sees the same files): exit 4, "nothing recovered", no
    /// OUT, the file byte-identical, no temp file; also with a backup in the backup directory,
    /// whose manifest gives the schema and root pages: random bytes still hold no row.
    func testAnEmptyFileAndANonSQLiteFileRecoverNothing() throws {
        let world = try makeWorld()
        let box = world.box
        let empty = box.root + "/empty.db", text = box.root + "/text.db"
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        try Data(String(repeating: "This is a plain text file, not an SQLite database.\n", count: 2000).utf8).write(to: URL(fileURLWithPath: text))
        let seeds = Array(1...32)
        let noise = box.root + "/noise"
        try FileManager.default.createDirectory(atPath: noise, withIntermediateDirectories: true)
        try F.python("""
        import random, sys
        for seed in range(1, 33):
            r = random.Random(seed)
            open("%s/%d.db" % (sys.argv[1], seed), "wb").write(bytes(r.getrandbits(8) for _ in range(65536)))
        """, [noise])

        func attempt(_ context: String) throws {
            for path in [empty, text] {
                let hash = try box.sha256(path)
                let run = try recover(world, path, ["--json"])
                XCTAssertEqual(run.status, 4, "\(context) \(path): \(run.stderr)\n\(run.stdout)")
                XCTAssertFalse(exists(world.out), "\(context) \(path): no OUT written")
                XCTAssertEqual(try box.sha256(path), hash, "\(context) \(path): byte-identical")
                XCTAssertFalse(exists(path + "-wal") || exists(path + "-shm") || exists(path + "-journal"), "\(context) \(path)")
                XCTAssertEqual(try F.result(run)["result"] as? String, "nothing recovered", "\(context) \(path): \(run.stdout)")
                try assertNoTempFiles(world, "\(context) \(path)")
            }
            var invented: [String] = []
            for seed in seeds {
                let path = noise + "/\(seed).db"
                let run = try recover(world, path)
                if run.status != 4 || exists(world.out) {
                    let rows = exists(world.out) ? try F.contents(world.out).tables.filter { !$0.value.isEmpty }.mapValues(\.count) : [:]
                    invented.append("seed \(seed): exit \(run.status), rows \(rows)")
                    if exists(world.out) { try FileManager.default.removeItem(atPath: world.out) }
                }
            }
            XCTAssertEqual(invented, [], "\(context): random bytes give no row (no OUT, exit 4)")
            try assertNoTempFiles(world, "\(context) random bytes")
        }
        try attempt("no backup")
        try box.makeDemoDatabase(rows: 300)
        _ = try box.takeBackup()
        try attempt("with a backup")
    }

    /// `--include-freelist` and `--apply` without `--recover`, and `--apply` with a PATH, are
    /// usage errors (exit 2) that write nothing.
    func testUsageErrors() throws {
        let world = try makeWorld()
        let box = world.box
        try box.makeDemoDatabase(rows: 50)
        let live = try liveFiles(box)
        for args in [["--include-freelist"], ["--apply"], ["--include-freelist", "--apply"]] {
            let run = try box.run("abathur-integrity", args + ["--db", box.db, "--backup-dir", box.backups], env: world.env)
            XCTAssertEqual(run.status, 2, "\(args): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("--recover"), "\(args): \(run.stderr)")
        }
        let withPath = try recover(world, box.db, ["--apply"])
        XCTAssertEqual(withPath.status, 2, withPath.stderr)
        XCTAssertFalse(exists(world.out))
        XCTAssertEqual(try liveFiles(box), live)
        XCTAssertFalse(exists(box.backups))
        try assertNoTempFiles(world, "usage")
    }

    // MARK: - --json

    /// `--json` is one document, the tool's envelope around the fields of salvage-cli.md, on
    /// a database with one zeroed audit leaf page and a backup taken before: every field is
    /// there with its type; the damaged table's counts say what was lost; exit 1.
    func testJSONIsOneDocumentWithTheContractFields() throws {
        let world = try makeWorld()
        let box = world.box
        try box.makeDemoDatabase(rows: 300)
        let backup = try box.takeBackup()
        let original = try F.contents(box, of: box.db)
        let zeroed = try F.zeroLeafPage(box, of: "audit", in: box.db)

        let run = try recover(world, nil, ["--json"])
        XCTAssertEqual(run.status, 1, "damage met: \(run.stderr)\n\(run.stdout)")
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], "one JSON document: \(run.stdout)")
        XCTAssertEqual(document["tool"] as? String, "abathur-integrity")
        XCTAssertEqual(document["command"] as? String, "recover")
        XCTAssertEqual(document["exit_code"] as? Int, 1)
        XCTAssertNotNil(document["ok"] as? Bool)
        XCTAssertNotNil(document["errors"] as? [Any])
        XCTAssertNotNil(document["warnings"] as? [Any])
        let result = try XCTUnwrap(document["result"] as? [String: Any])

        XCTAssertEqual(result["source"] as? String, box.db)
        XCTAssertEqual(result["output"] as? String, world.out)
        XCTAssertNotNil(result["forensic_copy"] as? String)
        XCTAssertEqual(result["page_size"] as? Int, zeroed.pageSize)
        let pages = try XCTUnwrap(result["pages"] as? Int)
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: box.db)[.size] as? Int)
        XCTAssertEqual(pages, size / zeroed.pageSize)
        XCTAssertEqual(result["schema_from"] as? String, "database")
        let wal = try XCTUnwrap(result["wal"] as? [String: Any], "\(result)")
        XCTAssertEqual(wal["present"] as? Bool, false)
        XCTAssertEqual(wal["used"] as? Bool, false)
        XCTAssertEqual(wal["committed_frames"] as? Int, 0)
        XCTAssertNotNil(wal["detail"] as? String)
        XCTAssertEqual(result["lost_and_found"] as? Int, 0, "a zeroed page leaves nothing to attribute")
        XCTAssertGreaterThan(result["problems"] as? Int ?? 0, 0, "the zeroed page is damage met: \(result)")
        XCTAssertFalse((result["problem_samples"] as? [String] ?? []).isEmpty, "\(result)")
        XCTAssertEqual(result["backup"] as? String, backup)
        let checks = try XCTUnwrap(result["checks"] as? [[String: Any]])
        for check in checks {
            XCTAssertNotNil(check["name"] as? String, "\(check)")
            XCTAssertNotNil(check["ok"] as? Bool, "\(check)")
            XCTAssertNotNil(check["detail"] as? String, "\(check)")
        }
        XCTAssertTrue(checks.contains { $0["name"] as? String == "integrity_check" && $0["ok"] as? Bool == true }, "\(checks)")
        XCTAssertEqual(result["applied"] as? Bool, false)
        XCTAssertEqual(result["result"] as? String, "recovered")

        let tables = try XCTUnwrap(result["tables"] as? [[String: Any]])
        for table in tables {
            for key in ["recovered", "from_tree", "from_orphan_pages", "carved", "duplicates", "to_lost_and_found",
                        "in_backup", "in_lost_and_found_only", "altered", "missing", "not_in_backup"] {
                XCTAssertNotNil(table[key] as? Int, "\(key) in \(table)")
            }
            XCTAssertNotNil(table["altered_rowids"] as? [Int], "\(table)")
        }
        let audit = try XCTUnwrap(tables.first { $0["name"] as? String == "audit" })
        let had = try XCTUnwrap(original.tables["audit"]?.count)
        let salvaged = try F.contents(world.out)
        F.assertSalvaged(salvaged, from: original, losing: zeroed, of: "audit", "--json")
        XCTAssertEqual(audit["recovered"] as? Int, salvaged.tables["audit"]?.count)
        XCTAssertEqual(audit["in_backup"] as? Int, had)
        XCTAssertEqual(audit["missing"] as? Int, had - (salvaged.tables["audit"]?.count ?? 0))
        XCTAssertEqual(audit["altered"] as? Int, 0)
        XCTAssertEqual(audit["not_in_backup"] as? Int, 0)
    }

    /// Without a backup the comparison fields are null (salvage-cli.md: `n|null`), present.
    func testJSONWithoutABackupHasNullComparisons() throws {
        let world = try makeWorld()
        let box = world.box
        try box.makeDemoDatabase(rows: 100)
        let run = try recover(world, nil, ["--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let result = try F.result(run)
        XCTAssertTrue(result["backup"] is NSNull, "backup: null when no backup was compared: \(result.keys.sorted())")
        let tables = try XCTUnwrap(result["tables"] as? [[String: Any]])
        XCTAssertFalse(tables.isEmpty)
        var absent: [String] = []
        for table in tables {
            for key in ["in_backup", "in_lost_and_found_only", "altered", "missing", "not_in_backup"] where !(table[key] is NSNull) {
                absent.append("\(table["name"] ?? "?").\(key)")
            }
            if !(table["altered_rowids"] is NSNull || table["altered_rowids"] is [Any]) { absent.append("\(table["name"] ?? "?").altered_rowids") }
        }
        XCTAssertEqual(absent, [], "the comparison fields are there, null, when there is no backup")
    }

    // MARK: - Page 1 zeroed

    /// Page 1 (the header and the schema's root) zeroed in a copy of the database: the schema
    /// comes from the newest backup's manifest (schema_from "manifest"), at least 95% of the
    /// rows come back in their own table, none invented and none altered; OUT passes
    /// integrity_check; exit 1.
    func testAZeroedPageOneSalvagesWithTheNewestManifest() throws {
        let world = try makeWorld()
        let box = world.box
        try box.makeDemoDatabase(rows: 300)
        _ = try box.takeBackup(at: 1_796_000_000)
        let newest = try box.takeBackup(at: 1_796_100_000)
        let manifest = try box.manifest(newest)
        XCTAssertNotNil((manifest["schema"] as? [String: Any])?["root_pages"], "the manifest records root pages: \(manifest["schema"] ?? "")")
        let original = try F.contents(box, of: box.db)
        let damaged = box.root + "/damaged.db"
        XCTAssertEqual(try Sandbox.execute("/bin/cp", [box.db, damaged]).status, 0)
        try F.zeroPage(1, pageSize: try F.pageSize(of: damaged), of: damaged)
        let hash = try box.sha256(damaged)

        let run = try recover(world, damaged, ["--json"])
        XCTAssertEqual(run.status, 1, "\(run.stderr)\n\(run.stdout)")
        XCTAssertEqual(try box.sha256(damaged), hash)
        try assertNoTempFiles(world, "page 1")
        let result = try F.result(run)
        XCTAssertEqual(result["schema_from"] as? String, "manifest", "\(result)")
        XCTAssertEqual(result["backup"] as? String, newest)
        XCTAssertEqual(try F.sqlite(world.out, "PRAGMA integrity_check"), "ok")

        let salvaged = try F.contents(world.out)
        var inTable = 0
        for (name, rows) in original.tables {
            let got = salvaged.tables[name] ?? [:]
            XCTAssertEqual(Set(got.keys).subtracting(rows.keys), [], "\(name): no row invented")
            XCTAssertEqual(got.filter { rows[$0.key] != $0.value }.map(\.key), [], "\(name): no row altered")
            inTable += got.count
        }
        XCTAssertGreaterThanOrEqual(Double(inTable), 0.95 * Double(original.rowCount),
                                    "in-table \(inTable) of \(original.rowCount)")
    }
}
