import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-restore`, black box: listing, choosing the backup, refusing bad candidates without
/// touching anything, dry runs, `--to`, drills, fresh starts and incident records.
final class RestoreTests: XCTestCase {
    /// 2026-11-27T10:00:00Z: backups are "taken" at t0, t0 + 1 h, t0 + 2 h (ABATHUR_NOW).
    static let t0 = 1_795_773_600
    static let hour = 3600
    static let lockName = ".abathur.db.abathur-lock"

    // MARK: - Plumbing

    /// A demo database and `count` backups an hour apart, each with different contents (one
    /// more `state` row each time). Returns the backup names, oldest first.
    func makeBackups(_ box: Sandbox, count: Int, rows: Int = 300) throws -> [String] {
        try box.makeDemoDatabase(rows: rows)
        for i in 0..<count {
            let insert = try Sandbox.execute("/usr/bin/sqlite3", [box.db, "INSERT INTO state(key, value, updated_at) VALUES ('backup-\(i)', 'x', 'now')"])
            XCTAssertEqual(insert.status, 0, insert.stderr)
            let taken = try box.backup([], env: ["ABATHUR_NOW": "\(RestoreTests.t0 + i * RestoreTests.hour)"])
            XCTAssertEqual(taken.status, 0, taken.stderr)
        }
        let names = try box.backupFiles()
        XCTAssertEqual(names.count, count)
        let hashes = Set(try names.map { try databaseSHA(box, $0) })
        XCTAssertEqual(hashes.count, count, "the backups must differ, or choosing one cannot be told from choosing another")
        return names
    }

    func databaseSHA(_ box: Sandbox, _ name: String) throws -> String {
        let database = try XCTUnwrap(try box.manifest(name)["database"] as? [String: Any])
        return try XCTUnwrap(database["sha256"] as? String)
    }

    /// A crashed writer's state: committed rows only in the `-wal`, and a `-shm` beside it.
    func makeHotWAL(_ box: Sandbox, rows: Int = 30) throws {
        try box.makeHotWAL(inserts: rows)
    }

    /// A `systemctl` first on PATH that only logs its arguments, and two units to stop.
    func fakeSystemctl(_ box: Sandbox) throws -> (env: [String: String], log: String) {
        let bin = box.root + "/fakebin"
        let log = box.root + "/systemctl.log"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let script = bin + "/systemctl"
        try Data("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '\(log)'\nexit 0\n".utf8).write(to: URL(fileURLWithPath: script))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        return (["PATH": bin + ":/usr/bin:/bin", "ABATHUR_SERVICES": "abathur-api abathur-workers"], log)
    }

    func logLines(_ path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }

    /// The live directory without our lock file, and the backup directory without its lock
    /// file and incident records: what "nothing changed" compares.
    func liveState(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.liveDir).filter { $0.key != RestoreTests.lockName }
    }

    func backupState(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.backups).filter { $0.key != ".abathur.lock" && $0.key != "incidents" }
    }

    func temps(under root: String) -> [String] {
        var found: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let path = enumerator?.nextObject() as? String {
            if (path as NSString).lastPathComponent.hasPrefix(".abathur-tmp-") { found.append(path) }
        }
        return found
    }

    func assertUntouched(_ box: Sandbox, live: [String: String], backups: [String: String],
                         file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try liveState(box), live, "live db, -wal, -shm byte-identical, nothing new beside them", file: file, line: line)
        XCTAssertEqual(try backupState(box), backups, "every backup byte-identical, no safety copy", file: file, line: line)
        XCTAssertEqual(temps(under: box.root), [], "no temp file left", file: file, line: line)
    }

    func assertOneError(_ run: Run, naming path: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.stderrLines.count, 1, "one diagnostic line:\n" + run.stderr, file: file, line: line)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-restore: error: \(path): "), run.stderr, file: file, line: line)
    }

    func json(_ run: Run) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], run.stdout)
    }

    func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func mkdir(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// The path after "incident record: " on stdout.
    func incidentRecord(_ run: Run, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let found = run.stdout.split(separator: "\n").first { $0.hasPrefix("incident record: ") }
        let record = try XCTUnwrap(found, "stdout names the incident record:\n" + run.stdout, file: file, line: line)
        return String(record.dropFirst("incident record: ".count))
    }

    // MARK: - 1. --list and --show

    func testListIsNewestFirstAndJSONMatchesTheManifests() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 3)

        let plain = try box.restore(["--list"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(plain.stdout, names.reversed().joined(separator: "\n") + "\n", "one name per line, newest first, no decoration")
        XCTAssertEqual(plain.stderr, "")

        let listed = try box.restore(["--list", "--json"])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        let rows = try XCTUnwrap((try json(listed)["result"] as? [String: Any])?["backups"] as? [[String: Any]])
        XCTAssertEqual(rows.compactMap { $0["name"] as? String }, Array(names.reversed()))
        for row in rows {
            let name = try XCTUnwrap(row["name"] as? String)
            let manifest = try box.manifest(name)
            XCTAssertEqual(row["created"] as? String, manifest["created"] as? String, name)
            XCTAssertEqual(row["created_unix"] as? Int, manifest["created_unix"] as? Int, name)
            XCTAssertEqual(row["gz_bytes"] as? Int, (manifest["gz"] as? [String: Any])?["bytes"] as? Int, name)
            XCTAssertEqual(row["database_bytes"] as? Int, (manifest["database"] as? [String: Any])?["bytes"] as? Int, name)
            XCTAssertEqual(row["state"] as? String, "verified", name)
            let counts = try XCTUnwrap(row["row_counts"] as? [String: Int], name)
            XCTAssertEqual(counts, manifest["row_counts"] as? [String: Int], name)
        }
        let created = try rows.map { try XCTUnwrap($0["created_unix"] as? Int) }
        XCTAssertEqual(created, [2, 1, 0].map { RestoreTests.t0 + $0 * RestoreTests.hour })

        // Without its manifest a backup is incomplete, and still listed.
        try FileManager.default.removeItem(atPath: box.backups + "/" + names[1] + ".json")
        let after = try box.restore(["--list", "--json"])
        XCTAssertEqual(after.status, 0, after.stderr)
        let states = try XCTUnwrap((try json(after)["result"] as? [String: Any])?["backups"] as? [[String: Any]])
        XCTAssertEqual(states.compactMap { $0["name"] as? String }, Array(names.reversed()))
        XCTAssertEqual(states.compactMap { $0["state"] as? String }, ["verified", "incomplete", "verified"])
    }

    func testShowPrintsChecksSchemaAndRowCounts() throws {
        let box = try Sandbox()
        let name = try XCTUnwrap(try makeBackups(box, count: 1).first)
        let manifest = try box.manifest(name)
        let shown = try box.restore(["--show", name])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertEqual(shown.stderr, "")
        let lines = shown.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(shown.stdout.contains(name), shown.stdout)

        let checks = try XCTUnwrap(manifest["checks"] as? [[String: Any]])
        XCTAssertFalse(checks.isEmpty)
        for check in checks {
            let checkName = try XCTUnwrap(check["name"] as? String)
            XCTAssertTrue(lines.contains { $0.contains(checkName + ":") && $0.contains("ok") }, "check \(checkName):\n" + shown.stdout)
        }
        let schema = try XCTUnwrap(manifest["schema"] as? [String: Any])
        let tables = try XCTUnwrap(schema["tables"] as? [String]).count
        let indexes = try XCTUnwrap(schema["indexes"] as? [String]).count
        XCTAssertEqual(tables, 11)
        XCTAssertTrue(shown.stdout.contains("\(tables) tables, \(indexes) indexes"), shown.stdout)
        let counts = try XCTUnwrap(manifest["row_counts"] as? [String: Int])
        XCTAssertEqual(counts.count, 11)
        for (table, count) in counts {
            XCTAssertTrue(lines.contains { $0.split(separator: " ").map(String.init) == [table, "\(count)"] },
                          "row count of \(table):\n" + shown.stdout)
        }

        let missing = try box.restore(["--show", "abathur_2020-01-01_00-00-00.db.gz"])
        XCTAssertEqual(missing.status, 2, missing.stderr)
        XCTAssertEqual(missing.stderrLines.count, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("abathur_2020-01-01_00-00-00.db.gz"), missing.stderr)
    }

    // MARK: - 2. Choosing what to restore

    func testDefaultRestoresTheNewestVerifiedBackup() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 3)
        let result = try box.restore([])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "", "a successful run with stdout not a terminal prints nothing on stderr")
        XCTAssertTrue(result.stdout.contains("restored \(box.db)"), result.stdout)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[2]))

        // The newest without a manifest is not verified: the one before it is restored.
        try FileManager.default.removeItem(atPath: box.backups + "/" + names[2] + ".json")
        let again = try box.restore([])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[1]))
        XCTAssertEqual(try box.query(box.db, "PRAGMA integrity_check"), "ok")
    }

    func testRestoreByNameWithAndWithoutSuffix() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 3)
        let full = try box.restore([names[0]])
        XCTAssertEqual(full.status, 0, full.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[0]))

        let bare = String(names[1].dropLast(".db.gz".count))
        let short = try box.restore([bare])
        XCTAssertEqual(short.status, 0, short.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[1]))

        let live = try liveState(box), backups = try backupState(box)
        let missing = try box.restore(["abathur_2020-01-01_00-00-00"])
        XCTAssertEqual(missing.status, 2, missing.stderr)
        try assertUntouched(box, live: live, backups: backups)
    }

    /// --before is strictly before: a backup created exactly at TIME is not chosen.
    func testBeforeTimeBoundariesAndFormats() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 3)
        for (i, name) in names.enumerated() {
            XCTAssertEqual(try box.manifest(name)["created_unix"] as? Int, RestoreTests.t0 + i * RestoreTests.hour, name)
        }
        let t0 = RestoreTests.t0, hour = RestoreTests.hour
        let cases: [(String, Int)] = [
            ("2026-11-27T12:00:00Z", 1),   // exactly the newest's time: the one before it
            ("2026-11-27 12:00:01", 2),    // one second later: the newest
            ("@\(t0 + hour)", 0),          // exactly the middle one's time
            ("@\(t0 + hour + 1)", 1),
            ("2026-11-27T10:00:01Z", 0),
            ("2026-11-28", 2),
        ]
        for (n, (time, expected)) in cases.enumerated() {
            let target = box.root + "/before-\(n).db"
            let result = try box.restore(["--before", time, "--to", target])
            XCTAssertEqual(result.status, 0, "--before \(time): " + result.stderr)
            XCTAssertEqual(try box.sha256(target), try databaseSHA(box, names[expected]), "--before \(time) picks \(names[expected])")
        }

        let live = try liveState(box), backups = try backupState(box)
        for time in ["2026-11-27T10:00:00Z", "@\(t0 - 1)", "2026-11-27"] {
            let target = box.root + "/too-early.db"
            let result = try box.restore(["--before", time, "--to", target])
            XCTAssertEqual(result.status, 3, "nothing before \(time): " + result.stderr)
            XCTAssertEqual(result.stderrLines.count, 1, result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: target))
        }
        for time in ["yesterday", "27/11/2026 12:00", "@soon", ""] {
            let result = try box.restore(["--before", time])
            XCTAssertEqual(result.status, 2, "--before '\(time)': " + result.stderr)
        }
        try assertUntouched(box, live: live, backups: backups)
    }

    func testRestoreFromPathsOutsideTheBackupDirectory() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 2)
        let fm = FileManager.default

        // A .db.gz with its manifest beside it.
        let withManifest = box.root + "/copied"
        try mkdir(withManifest)
        try fm.copyItem(atPath: box.backups + "/" + names[0], toPath: withManifest + "/" + names[0])
        try fm.copyItem(atPath: box.backups + "/" + names[0] + ".json", toPath: withManifest + "/" + names[0] + ".json")
        let one = try box.restore([withManifest + "/" + names[0]])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[0]))

        // Only the .db.gz, under another name.
        let bare = box.root + "/elsewhere.db.gz"
        try fm.copyItem(atPath: box.backups + "/" + names[1], toPath: bare)
        let two = try box.restore([bare])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[1]))

        // A raw database.
        let raw = box.root + "/raw.db"
        XCTAssertEqual(try box.gunzip(names[0], to: raw).status, 0)
        let three = try box.restore([raw])
        XCTAssertEqual(three.status, 0, three.stderr)
        XCTAssertEqual(try box.sha256(box.db), try box.sha256(raw))
        XCTAssertEqual(try box.sha256(raw), try databaseSHA(box, names[0]))

        // The manifest beside a path is read: one that disagrees with the bytes refuses them.
        let manifestPath = withManifest + "/" + names[0] + ".json"
        var manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifestPath))) as? [String: Any])
        var database = try XCTUnwrap(manifest["database"] as? [String: Any])
        database["sha256"] = String(repeating: "0", count: 64)
        manifest["database"] = database
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: manifestPath))
        let live = try liveState(box), backups = try backupState(box)
        let bad = try box.restore([withManifest + "/" + names[0]])
        XCTAssertEqual(bad.status, 3, bad.stderr)
        assertOneError(bad, naming: withManifest + "/" + names[0])
        try assertUntouched(box, live: live, backups: backups)
    }

    func testRestoreFromStandardInput() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 2)

        // A .db.gz stream through a real shell pipe.
        let piped = try box.run("/bin/sh", ["-c", "cat '\(box.backups)/\(names[0])' | '\(Binaries.tool("abathur-restore"))' --db '\(box.db)' --backup-dir '\(box.backups)' -"],
                                env: ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""])
        XCTAssertEqual(piped.status, 0, piped.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[0]))

        // A raw database stream.
        let raw = box.root + "/raw.db"
        XCTAssertEqual(try box.gunzip(names[1], to: raw).status, 0)
        let streamed = try box.restore(["-"], stdin: try Data(contentsOf: URL(fileURLWithPath: raw)))
        XCTAssertEqual(streamed.status, 0, streamed.stderr)
        XCTAssertEqual(try box.sha256(box.db), try box.sha256(raw))

        // And a .db.gz stream into another path.
        let target = box.root + "/from-stdin.db"
        let gz = try Data(contentsOf: URL(fileURLWithPath: box.backups + "/" + names[1]))
        let to = try box.restore(["--to", target, "-"], stdin: gz)
        XCTAssertEqual(to.status, 0, to.stderr)
        XCTAssertEqual(try box.sha256(target), try databaseSHA(box, names[1]))
    }

    // MARK: - 3. Bad candidates change nothing

    /// A backup, then a crashed writer's hot WAL in the live directory.
    func corruptWorld() throws -> (box: Sandbox, name: String) {
        let box = try Sandbox(name)
        let name = try XCTUnwrap(try makeBackups(box, count: 1).first)
        try makeHotWAL(box)
        return (box, name)
    }

    func testBitFlipInTheGzipIsRefused() throws {
        let (box, name) = try corruptWorld()
        let path = box.backups + "/" + name
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0x08
        try bytes.write(to: URL(fileURLWithPath: path))
        let live = try liveState(box), backups = try backupState(box)

        let result = try box.restore([])
        XCTAssertEqual(result.status, 3, result.stderr)
        assertOneError(result, naming: path)
        try assertUntouched(box, live: live, backups: backups)

        // The same flip without a manifest to compare with: gzip's CRC still catches it.
        let loose = box.root + "/flipped.db.gz"
        try bytes.write(to: URL(fileURLWithPath: loose))
        let alone = try box.restore([loose])
        XCTAssertEqual(alone.status, 3, alone.stderr)
        assertOneError(alone, naming: loose)
        try assertUntouched(box, live: live, backups: backups)
    }

    func testTruncatedGzipIsRefused() throws {
        let (box, name) = try corruptWorld()
        let path = box.backups + "/" + name
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let loose = box.root + "/truncated.db.gz"
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: loose))
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: path))
        let live = try liveState(box), backups = try backupState(box)

        let named = try box.restore([name])
        XCTAssertEqual(named.status, 3, named.stderr)
        assertOneError(named, naming: path)
        try assertUntouched(box, live: live, backups: backups)

        let alone = try box.restore([loose])
        XCTAssertEqual(alone.status, 3, alone.stderr)
        assertOneError(alone, naming: loose)
        try assertUntouched(box, live: live, backups: backups)
    }

    func testManifestWithAnotherDatabaseHashIsRefused() throws {
        let (box, name) = try corruptWorld()
        let manifestPath = box.backups + "/" + name + ".json"
        var manifest = try box.manifest(name)
        var database = try XCTUnwrap(manifest["database"] as? [String: Any])
        let real = try XCTUnwrap(database["sha256"] as? String)
        let edited = (real.first == "a" ? "b" : "a") + real.dropFirst()
        database["sha256"] = edited
        manifest["database"] = database
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: manifestPath))
        XCTAssertEqual(try databaseSHA(box, name), edited, "still a valid manifest")
        let live = try liveState(box), backups = try backupState(box)

        let result = try box.restore([])
        XCTAssertEqual(result.status, 3, result.stderr)
        assertOneError(result, naming: box.backups + "/" + name)
        try assertUntouched(box, live: live, backups: backups)
    }

    func testNonSQLiteFilesAreRefused() throws {
        let (box, _) = try corruptWorld()
        let text = box.root + "/notes.txt"
        try write(String(repeating: "this is not a database\n", count: 200), to: text)
        XCTAssertEqual(try Sandbox.shell("gzip -c '\(text)' > '\(text).gz'").status, 0)
        let zeros = box.root + "/zeros.db"
        try Data(repeating: 0, count: 65536).write(to: URL(fileURLWithPath: zeros))
        let live = try liveState(box), backups = try backupState(box)
        // SPEC.md, "which input gets which code": a file that is not SQLite is 4 in every
        // tool; a gzip stream that inflates to one is a bad backup, 3.
        for (path, code) in [(text, Int32(4)), (text + ".gz", 3), (zeros, 4)] {
            let result = try box.restore([path])
            XCTAssertEqual(result.status, code, path + ": " + result.stderr)
            assertOneError(result, naming: path)
            try assertUntouched(box, live: live, backups: backups)
        }
    }

    func testForeignDatabaseIsRefused() throws {
        let (box, _) = try corruptWorld()
        let foreign = box.root + "/other-app.db"
        try box.makeDemoDatabase(rows: 50, at: foreign)
        let set = try Sandbox.execute("/usr/bin/sqlite3", [foreign, "PRAGMA journal_mode=DELETE; PRAGMA application_id=42;"])
        XCTAssertEqual(set.status, 0, set.stderr)
        XCTAssertEqual(try box.query(foreign, "PRAGMA application_id"), "42")
        XCTAssertEqual(try Sandbox.shell("gzip -c '\(foreign)' > '\(foreign).gz'").status, 0)
        let live = try liveState(box), backups = try backupState(box)

        for path in [foreign + ".gz", foreign] {
            let result = try box.restore([path])
            XCTAssertEqual(result.status, 7, path + ": " + result.stderr)
            assertOneError(result, naming: path)
            XCTAssertTrue(result.stderr.contains("foreign database"), result.stderr)
            try assertUntouched(box, live: live, backups: backups)
        }
    }

    func testSymlinkSourceIsRefusedUnlessForced() throws {
        let (box, name) = try corruptWorld()
        let link = box.root + "/latest.db.gz"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: box.backups + "/" + name)
        let live = try liveState(box), backups = try backupState(box)

        let refused = try box.restore([link])
        XCTAssertEqual(refused.status, 7, refused.stderr)
        assertOneError(refused, naming: link)
        try assertUntouched(box, live: live, backups: backups)

        let forced = try box.restore(["--force", link])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, name))
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), box.backups + "/" + name)
    }

    // MARK: - 4. --dry-run

    func testDryRunPrintsThePlanAndChangesNothing() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 2)
        try makeHotWAL(box)
        let (env, log) = try fakeSystemctl(box)
        let live = try liveState(box), backups = try backupState(box)

        let result = try box.restore(["--dry-run"], env: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains(names[1]), "names the backup it would restore:\n" + result.stdout)
        XCTAssertFalse(result.stdout.contains(names[0]), result.stdout)
        XCTAssertTrue(result.stdout.contains("abathur-api abathur-workers"), "names the units:\n" + result.stdout)
        XCTAssertTrue(result.stdout.contains(box.db), "names the database:\n" + result.stdout)
        XCTAssertTrue(result.stdout.contains("space"), "says how much space it needs:\n" + result.stdout)

        try assertUntouched(box, live: live, backups: backups)
        let fm = FileManager.default
        XCTAssertFalse(fm.fileExists(atPath: box.backups + "/safety"))
        XCTAssertFalse(fm.fileExists(atPath: box.backups + "/incidents"))
        XCTAssertEqual(logLines(log), [], "a dry run stops no unit")

        let named = try box.restore(["--dry-run", names[0]], env: env)
        XCTAssertEqual(named.status, 0, named.stderr)
        XCTAssertTrue(named.stdout.contains(names[0]), named.stdout)
        try assertUntouched(box, live: live, backups: backups)
        XCTAssertEqual(logLines(log), [])
    }

    // MARK: - 5. --to

    func testRestoreToAnotherPathLeavesLiveAndUnitsAlone() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 2)
        try makeHotWAL(box)
        var (env, log) = try fakeSystemctl(box)
        // A health check would fail (nothing listens there) and roll the restore back.
        env["ABATHUR_HEALTH_URL"] = "http://127.0.0.1:9/health"
        env["ABATHUR_HEALTH_RETRIES"] = "1"
        env["ABATHUR_HEALTH_TIMEOUT"] = "1s"
        let live = try liveState(box), backups = try backupState(box)

        let targetDir = box.root + "/scratch"
        try mkdir(targetDir)
        let target = targetDir + "/copy.db"
        let result = try box.restore(["--to", target], env: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try box.sha256(target), try databaseSHA(box, names[1]))
        XCTAssertEqual(logLines(log), [], "--to never runs systemctl")
        XCTAssertEqual(try liveState(box), live)
        XCTAssertEqual(try box.fingerprint(box.backups).filter { $0.key.hasSuffix(".db.gz") || $0.key.hasSuffix(".json") },
                       backups.filter { $0.key.hasSuffix(".db.gz") || $0.key.hasSuffix(".json") })
        XCTAssertEqual(temps(under: box.root), [])

        let older = targetDir + "/older.db"
        let named = try box.restore(["--to", older, names[0]], env: env)
        XCTAssertEqual(named.status, 0, named.stderr)
        XCTAssertEqual(try box.sha256(older), try databaseSHA(box, names[0]))
        XCTAssertEqual(logLines(log), [])
        XCTAssertEqual(try liveState(box), live)
    }

    // MARK: - 6. --drill

    func testDrillComparesWithLiveAndTouchesNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 500)
        XCTAssertEqual(try box.backup().status, 0)
        let name = try XCTUnwrap(try box.backupFiles().first)
        let backupCounts = try XCTUnwrap(try box.manifest(name)["row_counts"] as? [String: Int])
        // Seven new tasks through the sqlite3 CLI (checkpointed), 25 state rows in a hot WAL.
        let insert = try Sandbox.execute("/usr/bin/sqlite3", [box.db, """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 7)
            INSERT INTO tasks(title, status, created_at) SELECT 'drill-' || i, 'pending', datetime('now') FROM n;
            """])
        XCTAssertEqual(insert.status, 0, insert.stderr)
        try makeHotWAL(box, rows: 25)
        let scratch = box.root + "/tmp"
        try mkdir(scratch)
        var (env, log) = try fakeSystemctl(box)
        env["ABATHUR_TEMP_DIR"] = scratch
        let prom = box.root + "/drill.prom"
        let live = try liveState(box), backups = try backupState(box)

        let result = try box.restore(["--drill", "--json", "--prometheus", prom], env: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try XCTUnwrap(try json(result)["result"] as? [String: Any])
        let ttr = try XCTUnwrap(report["time_to_recover_seconds"] as? Double)
        XCTAssertGreaterThan(ttr, 0)
        let steps = try XCTUnwrap(report["steps"] as? [[String: Any]])
        XCTAssertFalse(steps.isEmpty)
        XCTAssertTrue(steps.contains { $0["name"] as? String == "decompress" }, "\(steps)")
        let rows = try XCTUnwrap(report["row_counts"] as? [[String: Any]])
        XCTAssertEqual(Set(rows.compactMap { $0["table"] as? String }), Set(backupCounts.keys))
        for row in rows {
            let table = try XCTUnwrap(row["table"] as? String)
            let expectedDelta = table == "tasks" ? 7 : table == "state" ? 25 : 0
            XCTAssertEqual(row["backup"] as? Int, backupCounts[table], table)
            XCTAssertEqual(row["live"] as? Int, backupCounts[table]! + expectedDelta, table)
            XCTAssertEqual(row["delta"] as? Int, expectedDelta, table)
        }
        let metrics = try String(contentsOfFile: prom, encoding: .utf8)
        let line = try XCTUnwrap(metrics.split(separator: "\n").first { $0.hasPrefix("abathur_restore_drill_time_to_recover_seconds ") }, metrics)
        XCTAssertGreaterThan(Double(line.split(separator: " ")[1]) ?? 0, 0, metrics)

        // The human form: a time, and backup against live per table.
        let plain = try box.restore(["--drill"], env: env)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertNotNil(plain.stdout.range(of: #"\d+(\.\d+)?s"#, options: .regularExpression), plain.stdout)
        let lines = plain.stdout.split(separator: "\n").map(String.init)
        let state = backupCounts["state"]!, tasks = backupCounts["tasks"]!
        XCTAssertTrue(lines.contains { $0.contains("state") && $0.contains("backup \(state)") && $0.contains("live \(state + 25)") }, plain.stdout)
        XCTAssertTrue(lines.contains { $0.contains("tasks") && $0.contains("backup \(tasks)") && $0.contains("live \(tasks + 7)") }, plain.stdout)

        XCTAssertEqual(try liveState(box), live, "a drill leaves the live db, -wal and -shm byte-identical")
        XCTAssertEqual(try backupState(box), backups)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.backups + "/safety"))
        XCTAssertEqual(logLines(log), [], "a drill never runs systemctl")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch), [], "the scratch directory is gone")
        XCTAssertEqual(temps(under: box.root), [])
    }

    // MARK: - 7. --reinit

    func initScript(_ box: Sandbox, exitCode: Int? = nil) throws -> String {
        let path = box.root + "/init-\(exitCode.map(String.init) ?? "demo").sh"
        let body = exitCode.map { "echo 'init failed on purpose' >&2\nexit \($0)\n" }
            ?? """
            set -e
            '\(Binaries.demo)' create "$ABATHUR_DB" --rows 0
            # The demo seeds a minimum of rows; a fresh start has none.
            sqlite3 "$ABATHUR_DB" 'DELETE FROM audit; DELETE FROM checkpoints; DELETE FROM tasks; DELETE FROM metrics;
              DELETE FROM memory_entries; DELETE FROM sessions; DELETE FROM agents; DELETE FROM state;
              DELETE FROM document_embeddings_data; DELETE FROM document_embeddings; DELETE FROM document_index;'

            """
        try write("#!/bin/sh\n" + body, to: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    func testReinitWithoutInitCommandIsAUsageError() throws {
        let box = try Sandbox()
        _ = try makeBackups(box, count: 1)
        try makeHotWAL(box)
        let live = try liveState(box), backups = try backupState(box)
        let result = try box.restore(["--reinit"])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("init_command"), result.stderr)
        try assertUntouched(box, live: live, backups: backups)
    }

    func testReinitBuildsAFreshDatabaseAndKeepsTheOldFiles() throws {
        let box = try Sandbox()
        _ = try makeBackups(box, count: 1)
        try makeHotWAL(box)
        let original = try liveState(box)
        XCTAssertEqual(Set(original.keys), ["abathur.db", "abathur.db-wal", "abathur.db-shm"])

        let result = try box.restore(["--reinit"], env: ["ABATHUR_INIT_COMMAND": try initScript(box)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertNotEqual(try box.sha256(box.db), original["abathur.db"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-wal"), "no stale -wal beside the fresh database")
        let safety = try FileManager.default.contentsOfDirectory(atPath: box.backups + "/safety").filter { $0.hasSuffix("-reinit") }
        XCTAssertEqual(safety.count, 1, "\(safety)")
        let copy = try box.fingerprint(box.backups + "/safety/" + XCTUnwrap(safety.first))
        XCTAssertEqual(copy, original, "the old db, -wal and -shm, byte-identical")

        XCTAssertEqual(try box.query(box.db, "PRAGMA integrity_check"), "ok")
        XCTAssertEqual(try box.query(box.db, "SELECT count(*) FROM tasks"), "0")
        XCTAssertEqual(try box.query(box.db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), "11")
        XCTAssertEqual(try box.query(box.db, "PRAGMA application_id"), "1094865992")
    }

    func testReinitWithAFailingInitCommandChangesNothing() throws {
        let box = try Sandbox()
        _ = try makeBackups(box, count: 1)
        try makeHotWAL(box)
        let live = try liveState(box), backups = try backupState(box)
        let result = try box.restore(["--reinit"], env: ["ABATHUR_INIT_COMMAND": try initScript(box, exitCode: 1)])
        XCTAssertEqual(result.status, 3, result.stderr)
        try assertUntouched(box, live: live, backups: backups)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.backups + "/safety"))
    }

    // MARK: - 8. Incident records

    func inode(_ path: String) throws -> Int {
        try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int)
    }

    /// A database with no -wal and no -journal is renamed over and never written again: its
    /// safety copy is the old file itself, hard-linked (no 1 GiB copy), with its bytes and hash.
    func testTheSafetyCopyOfADatabaseWithoutAWALIsTheOldFileItself() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 2)
        // A read-write connection closing last checkpoints the -wal and removes it.
        let closed = try Sandbox.execute("/usr/bin/sqlite3", [box.db, "PRAGMA user_version"])
        XCTAssertEqual(closed.status, 0, closed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-wal"), "closing the last connection removes the -wal")
        let (oldInode, oldSHA) = (try inode(box.db), try box.sha256(box.db))

        let result = try box.restore([names[0]])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[0]))
        let safetyLine = try XCTUnwrap(result.stdout.split(separator: "\n").first { $0.hasPrefix("safety copy: ") }, result.stdout)
        let copy = String(safetyLine.dropFirst("safety copy: ".count)) + "/" + (box.db as NSString).lastPathComponent
        XCTAssertEqual(try inode(copy), oldInode, "the old file itself, linked")
        XCTAssertNotEqual(try inode(box.db), oldInode)
        XCTAssertEqual(try box.sha256(copy), oldSHA)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: copy)[.referenceCount] as? Int, 1, "only the safety copy holds the old file now")
    }

    func testRestoreWritesAnIncidentRecord() throws {
        let box = try Sandbox()
        let names = try makeBackups(box, count: 1)
        try makeHotWAL(box)
        let original = try liveState(box)
        let oldInode = try inode(box.db)
        let (env, log) = try fakeSystemctl(box)

        let result = try box.restore([], env: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try box.sha256(box.db), try databaseSHA(box, names[0]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-wal"), "the stale -wal is gone from beside the restored database")

        // The units were stopped before and started after.
        let calls = logLines(log)
        XCTAssertEqual(calls.count, 2, "\(calls)")
        XCTAssertTrue(calls.first?.hasPrefix("stop") == true && calls.first?.contains("abathur-api abathur-workers") == true, "\(calls)")
        XCTAssertTrue(calls.last?.hasPrefix("start") == true && calls.last?.contains("abathur-api abathur-workers") == true, "\(calls)")

        // The safety copy holds the db, -wal and -shm as they were.
        let safetyLine = try XCTUnwrap(result.stdout.split(separator: "\n").first { $0.hasPrefix("safety copy: ") }, result.stdout)
        XCTAssertEqual(try box.fingerprint(String(safetyLine.dropFirst("safety copy: ".count))), original)
        // With a -wal beside it the old database is settled (written) before it goes: copied, never linked.
        XCTAssertNotEqual(try inode(String(safetyLine.dropFirst("safety copy: ".count)) + "/" + (box.db as NSString).lastPathComponent), oldInode)

        let md = try incidentRecord(result)
        XCTAssertTrue(md.hasSuffix(".md"), md)
        let text = try String(contentsOfFile: md, encoding: .utf8)
        XCTAssertTrue(text.contains("## Timeline"), text)
        XCTAssertTrue(text.contains("## Resolution"), text)
        let jsonPath = String(md.dropLast(3)) + ".json"
        let document = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: jsonPath))) as? [String: Any])
        let outcome = try XCTUnwrap(document["outcome"] as? [String: Any])
        let steps = try XCTUnwrap(outcome["steps"] as? [[String: Any]])
        let stepNames = steps.compactMap { $0["name"] as? String }
        for expected in ["lock", "locate", "decompress", "check candidate", "stop units", "safety copy", "swap", "post-check", "start units"] {
            XCTAssertTrue(stepNames.contains(expected), "step \(expected) in \(stepNames)")
        }
        for step in steps {
            let started = try XCTUnwrap(step["started"] as? String, "\(step)")
            XCTAssertNotNil(started.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression), started)
            XCTAssertNotNil(step["started_unix"] as? Double, "\(step)")
        }
        // One line per step in the Timeline section, in order.
        let timeline = try XCTUnwrap(text.components(separatedBy: "## Timeline").last?.components(separatedBy: "## Resolution").first)
        let stepLines = timeline.split(separator: "\n").filter { $0.hasPrefix("- ") }
        XCTAssertEqual(stepLines.count, steps.count, timeline)
        for (line, name) in zip(stepLines, stepNames) {
            XCTAssertTrue(line.contains(" \(name): "), "\(line) is step \(name)")
        }
    }

    func testRefusedRestoreWritesAnIncidentRecord() throws {
        let (box, name) = try corruptWorld()
        let link = box.root + "/latest.db.gz"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: box.backups + "/" + name)
        let result = try box.restore([link])
        XCTAssertEqual(result.status, 7, result.stderr)
        let md = try incidentRecord(result)
        let text = try String(contentsOfFile: md, encoding: .utf8)
        XCTAssertTrue(text.contains("## Timeline"), text)
        XCTAssertTrue(text.contains("## Resolution"), text)
        XCTAssertTrue(text.contains(link), "the record names the refused source:\n" + text)
        let document = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: String(md.dropLast(3)) + ".json"))) as? [String: Any])
        XCTAssertEqual(document["exit_code"] as? Int, 7)
        let steps = try XCTUnwrap((document["outcome"] as? [String: Any])?["steps"] as? [[String: Any]])
        XCTAssertFalse(steps.isEmpty)
        XCTAssertTrue(steps.contains { $0["ok"] as? Bool == false }, "the failed step is in the timeline: \(steps)")
    }
}
