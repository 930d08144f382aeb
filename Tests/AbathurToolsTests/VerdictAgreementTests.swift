import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 10, point 2: `abathur-backup verify NAME`, `abathur-integrity --backup NAME` and
/// `abathur-restore --dry-run NAME` give the same verdict on every backup (a pass is exit 0 or
/// 1, a fail exit 3 or above; here every fail is SPEC.md's 3, a bad backup), and none of them
/// changes anything: the live database and its directory, the backups, the units, temp_dir.
///
/// The damaged backups are built properly: a database with the defect, gzipped, with a
/// manifest that matches its bytes and its facts (hashes, sizes, schema, row counts), so that
/// only the content check can catch a content defect.
final class VerdictAgreementTests: XCTestCase {
    /// 2026-01-10 10:00:00 UTC: the healthy backup is taken then; the damaged ones are named
    /// a second apart after it.
    static let t0 = 1_768_039_200

    struct World {
        let box: Sandbox
        let healthy: String
        let temp: String
        let systemctlLog: String
        var env: [String: String]
        var scratch: String { box.root + "/scratch" }
    }

    /// A demo database, one real backup of it, a temp_dir, and a `systemctl` that only logs.
    func world(_ name: String = #function) throws -> World {
        let box = try Sandbox(name)
        try box.makeDemoDatabase(rows: 400)
        let taken = try box.backup([], env: ["ABATHUR_NOW": "\(Self.t0)"])
        XCTAssertEqual(taken.status, 0, taken.stderr)
        let healthy = try XCTUnwrap(try box.backupFiles().first)
        let temp = box.root + "/tmp", bin = box.root + "/fakebin", scratch = box.root + "/scratch"
        for dir in [temp, bin, scratch] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let log = box.root + "/systemctl.log"
        try Data("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '\(log)'\nexit 0\n".utf8).write(to: URL(fileURLWithPath: bin + "/systemctl"))
        XCTAssertEqual(chmod(bin + "/systemctl", 0o755), 0)
        let env = ["ABATHUR_TEMP_DIR": temp, "PATH": bin + ":/usr/bin:/bin",
                   "ABATHUR_SERVICES": "abathur-api abathur-workers", "ABATHUR_HEALTH_URL": ""]
        return World(box: box, healthy: healthy, temp: temp, systemctlLog: log, env: env)
    }

    /// The n-th damaged backup's file name: a scheduled name one second after the healthy one.
    func name(_ n: Int) -> String {
        let seconds = n % 60, minutes = n / 60
        return "abathur_2026-01-10_10-\(minutes < 10 ? "0" : "")\(minutes)-\(seconds < 10 ? "0" : "")\(seconds).db.gz"
    }

    func path(_ world: World, _ name: String) -> String { world.box.backups + "/" + name }

    func data(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func write(_ data: Data, _ path: String) throws { try data.write(to: URL(fileURLWithPath: path)) }

    /// The healthy backup's manifest as JSON, with `edit` applied, written as `name`'s.
    func writeManifest(_ world: World, for name: String, from source: String? = nil, _ edit: (inout [String: Any]) -> Void = { _ in }) throws {
        var manifest = try world.box.manifest(source ?? world.healthy)
        manifest["name"] = name
        edit(&manifest)
        try write(try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]), path(world, name) + ".json")
    }

    /// A database with a defect, made from the healthy backup by `damage` (given the scratch
    /// database's path), gzipped as `name`, with a manifest rebuilt from its bytes and facts.
    func publishDamaged(_ world: World, as name: String, _ damage: (String) throws -> Void) throws {
        let db = world.scratch + "/" + name.replacingOccurrences(of: ".gz", with: "")
        XCTAssertEqual(try world.box.gunzip(world.healthy, to: db).status, 0)
        try damage(db)
        for suffix in ["-wal", "-shm", "-journal"] { XCTAssertFalse(FileManager.default.fileExists(atPath: db + suffix), db + suffix) }
        XCTAssertEqual(try Sandbox.shell("gzip -n -c '\(db)' > '\(path(world, name))'").status, 0)
        let template = world.scratch + "/template.json"
        try write(try data(path(world, world.healthy) + ".json"), template)
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", Self.manifestScript, db, path(world, name), template, name, path(world, name) + ".json"])
        XCTAssertEqual(run.status, 0, run.stderr)
    }

    /// Rewrites a manifest so that it describes the database and the `.gz` as they are: the
    /// hashes, the sizes, the header's facts, the schema lines and their hash (type then name,
    /// as the tools write them), and the true row counts (NOT INDEXED: a damaged index must not
    /// change them).
    static let manifestScript = """
    import sqlite3, hashlib, json, sys
    db, gz, template, name, out = sys.argv[1:6]
    sha = lambda b: hashlib.sha256(b).hexdigest()
    raw, packed = open(db, 'rb').read(), open(gz, 'rb').read()
    m = json.load(open(template))
    m['name'] = name
    m['gz'] = {'sha256': sha(packed), 'bytes': len(packed)}
    c = sqlite3.connect('file:%s?immutable=1' % db, uri=True)
    one = lambda sql: c.execute(sql).fetchone()[0]
    m['database'].update(sha256=sha(raw), bytes=len(raw), page_size=one('PRAGMA page_size'), page_count=one('PRAGMA page_count'),
                         freelist_count=one('PRAGMA freelist_count'), user_version=one('PRAGMA user_version'),
                         application_id=one('PRAGMA application_id'))
    rows = c.execute("SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name").fetchall()
    lines = ['%s %s: %s' % row for row in rows]
    tables = [n for t, n, s in rows if t == 'table' and not n.startswith('sqlite_')]
    m['schema'] = {'sha256': sha('\\n'.join(lines).encode()), 'tables': tables, 'indexes': [n for t, n, s in rows if t == 'index'], 'sql': lines}
    m['row_counts'] = {n: one('SELECT count(*) FROM "%s" NOT INDEXED' % n.replace('"', '""'))
                       for t, n, s in rows if t == 'table' and not n.startswith('sqlite_') and not s.upper().startswith('CREATE VIRTUAL TABLE')}
    json.dump(m, open(out, 'w'), indent=2, sort_keys=True)
    """

    func sqlite(_ db: String, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try Sandbox.execute("/usr/bin/sqlite3", [db, sql])
        XCTAssertEqual(run.status, 0, "sqlite3 \(sql): \(run.stderr)", file: file, line: line)
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The three verdicts on one backup.
    struct Verdicts {
        var verify: Run
        var integrity: Run
        var dryRun: Run
        var all: [(String, Run)] { [("verify", verify), ("integrity --backup", integrity), ("restore --dry-run", dryRun)] }
    }

    func verdicts(_ world: World, _ name: String) throws -> Verdicts {
        let box = world.box
        let common = ["--db", box.db, "--backup-dir", box.backups]
        return Verdicts(
            verify: try box.run("abathur-backup", ["verify", name] + common, env: world.env),
            integrity: try box.run("abathur-integrity", ["--backup", name] + common, env: world.env),
            dryRun: try box.run("abathur-restore", ["--dry-run", name] + common, env: world.env))
    }

    /// What must never change: the live directory, the backups and manifests (bytes and names), temp_dir
    /// (every inflated copy removed), and the units (no systemctl call).
    func state(_ world: World) throws -> [String: String] {
        var state: [String: String] = [:]
        for (key, value) in try world.box.fingerprint(world.box.liveDir) { state["live/" + key] = value }
        // The lock file, and SHA256SUMS, which a locked run (verify) brings up to date.
        for (key, value) in try world.box.fingerprint(world.box.backups) where key != ".abathur.lock" && key != "SHA256SUMS" {
            state["backups/" + key] = value
        }
        for (key, value) in try world.box.fingerprint(world.temp) { state["temp/" + key] = value }
        state["systemctl"] = (try? String(contentsOfFile: world.systemctlLog, encoding: .utf8)) ?? ""
        return state
    }

    /// All three pass (`good`) or all three fail with 3, each naming the backup in one error
    /// line; nothing changed.
    func assertAgreement(_ world: World, _ name: String, good: Bool, because why: String,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try state(world)
        let runs = try verdicts(world, name)
        for (tool, run) in runs.all {
            let what = "\(why): \(tool): \(run.stdout)\(run.stderr)"
            if good {
                XCTAssertEqual(run.status, 0, what, file: file, line: line)
            } else {
                XCTAssertEqual(run.status, 3, what, file: file, line: line)
                XCTAssertTrue(run.stderrLines.contains { $0.contains(": error: ") && $0.contains(path(world, name)) },
                              "\(what): an error line names the backup", file: file, line: line)
            }
        }
        XCTAssertEqual(try state(world), before, "\(why): nothing changed", file: file, line: line)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: world.temp), [], "\(why): temp_dir left clean", file: file, line: line)
    }

    // MARK: - the matrix

    func testHealthyBackupPassesAllThree() throws {
        let world = try world()
        try assertAgreement(world, world.healthy, good: true, because: "healthy")
        // The dry run says it checked the backup, and still changed nothing.
        let run = try verdicts(world, world.healthy).dryRun
        XCTAssertTrue(run.stdout.contains("check: ok, inflated into \(world.temp)"), run.stdout)
        XCTAssertTrue(run.stdout.contains("dry run: nothing was changed"), run.stdout)
    }

    /// A rebuilt manifest of an undamaged copy passes: the builder itself is exact, so the
    /// content cases below fail for their defect alone.
    func testARebuiltManifestOfAnUndamagedCopyPassesAllThree() throws {
        let world = try world()
        let copy = name(1)
        try publishDamaged(world, as: copy) { _ in }
        try assertAgreement(world, copy, good: true, because: "rebuilt manifest")
    }

    func testDamagedStreamsFailAllThree() throws {
        let world = try world()
        let gz = try data(path(world, world.healthy))

        let flipped = name(2)
        var bits = gz
        bits[bits.count / 2] ^= 0x10
        try write(bits, path(world, flipped))
        try writeManifest(world, for: flipped)
        try assertAgreement(world, flipped, good: false, because: "flipped bits in the .gz")

        let truncated = name(3)
        try write(gz.prefix(gz.count * 2 / 3), path(world, truncated))
        try writeManifest(world, for: truncated)
        try assertAgreement(world, truncated, good: false, because: "truncated .gz")

        let appended = name(4)
        try write(gz + Data("garbage after the gzip stream\n".utf8), path(world, appended))
        try writeManifest(world, for: appended)
        try assertAgreement(world, appended, good: false, because: "garbage appended")
    }

    func testManifestsThatDoNotDescribeTheFileFailAllThree() throws {
        let world = try world()
        // Another backup, of other contents: its manifest under this backup's name.
        _ = try sqlite(world.box.db, "INSERT INTO state(key, value, updated_at) VALUES ('later', 'x', 'now')")
        let other = try world.box.backup([], env: ["ABATHUR_NOW": "\(Self.t0 + 3600)"])
        XCTAssertEqual(other.status, 0, other.stderr)
        let otherName = URL(fileURLWithPath: other.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).lastPathComponent

        let foreign = name(5)
        try write(try data(path(world, world.healthy)), path(world, foreign))
        try writeManifest(world, for: foreign, from: otherName)
        try assertAgreement(world, foreign, good: false, because: "a manifest for another file")

        let counted = name(6)
        try write(try data(path(world, world.healthy)), path(world, counted))
        try writeManifest(world, for: counted) { manifest in
            var counts = manifest["row_counts"] as! [String: Any]
            counts["state"] = (counts["state"] as! Int) + 1
            manifest["row_counts"] = counts
        }
        try assertAgreement(world, counted, good: false, because: "a manifest with a wrong row count")

        let missing = name(7)
        try write(try data(path(world, world.healthy)), path(world, missing))
        try assertAgreement(world, missing, good: false, because: "a manifest missing")
    }

    /// The one exception, by policy and not by the file: a backup whose manifest says it was
    /// not verified when taken (the snapshot lacked commits a damaged WAL held) is stored
    /// intact, a warning for verify and integrity alike; `abathur-restore` never chooses it by
    /// name (exit 3), as it never chooses any unverified backup.
    func testABackupNotVerifiedWhenTakenIsAWarningForVerifyAndIntegrityAndNotARestoreTarget() throws {
        let world = try world()
        let unverified = name(12)
        try write(try data(path(world, world.healthy)), path(world, unverified))
        try writeManifest(world, for: unverified) { $0["verified"] = false }
        let before = try state(world)
        let runs = try verdicts(world, unverified)
        XCTAssertEqual(runs.verify.status, 1, runs.verify.stderr)
        XCTAssertEqual(runs.integrity.status, 1, runs.integrity.stdout + runs.integrity.stderr)
        for run in [runs.verify, runs.integrity] {
            XCTAssertTrue(run.stderr.contains("not verified when taken"), run.stderr)
        }
        XCTAssertEqual(runs.dryRun.status, 3, runs.dryRun.stderr)
        XCTAssertTrue(runs.dryRun.stderr.contains("not a complete, verified backup"), runs.dryRun.stderr)
        XCTAssertEqual(try state(world), before)
    }

    func testContentDefectsBehindMatchingManifestsFailAllThree() throws {
        let world = try world()

        let corrupt = name(8)
        try publishDamaged(world, as: corrupt) { db in
            let root = try XCTUnwrap(Int(try sqlite(db, "SELECT rootpage FROM sqlite_schema WHERE type='index' AND name='idx_tasks_status'")))
            let pageSize = try XCTUnwrap(Int(try sqlite(db, "PRAGMA page_size")))
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: db))
            try handle.seek(toOffset: UInt64((root - 1) * pageSize))
            handle.write(Data(count: pageSize))
            try handle.close()
        }
        try assertAgreement(world, corrupt, good: false, because: "an inflated database with a corrupt page")

        let orphan = name(9)
        try publishDamaged(world, as: orphan) { db in
            _ = try sqlite(db, "PRAGMA foreign_keys=OFF; INSERT INTO tasks(id, agent_id, title, status, created_at) VALUES (900001, 'agent-nobody', 'orphan', 'pending', 'now')")
        }
        try assertAgreement(world, orphan, good: false, because: "a foreign key violation")

        let dropped = name(10)
        try publishDamaged(world, as: dropped) { db in _ = try sqlite(db, "DROP TABLE document_index") }
        try assertAgreement(world, dropped, good: false, because: "a missing table")

        // Not in the issue's list: an index that admission requires. In a backup it is an
        // error for integrity too (a warning only for a database in place).
        let unindexed = name(11)
        try publishDamaged(world, as: unindexed) { db in _ = try sqlite(db, "DROP INDEX idx_tasks_status") }
        var strict = world
        strict.env["ABATHUR_EXPECT_INDEXES"] = "idx_tasks_status"
        try assertAgreement(strict, world.healthy, good: true, because: "the expected index present")
        try assertAgreement(strict, unindexed, good: false, because: "a missing expected index")
    }
}
