import Foundation
import XCTest
@testable import AbathurTestSupport

/// The default action: a verified, compressed, hashed backup that plain gunzip restores.
final class BackupTakeTests: XCTestCase {
    func testBackupIsGunzipReadableAndMatchesItsManifest() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 800)
        let result = try box.backup()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "", "a successful run with stdout not a terminal prints nothing on stderr")
        let files = try box.backupFiles()
        XCTAssertEqual(files.count, 1)
        let name = try XCTUnwrap(files.first)
        XCTAssertEqual(result.stdout, box.backups + "/" + name + "\n", "stdout names the new backup, one line")
        XCTAssertNotNil(name.range(of: #"^abathur_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.db\.gz$"#, options: .regularExpression))

        let test = try Sandbox.shell("gzip -t '\(box.backups)/\(name)'")
        XCTAssertEqual(test.status, 0, test.stderr)
        let restored = box.root + "/restored.db"
        XCTAssertEqual(try box.gunzip(name, to: restored).status, 0)

        let manifest = try box.manifest(name)
        let database = try XCTUnwrap(manifest["database"] as? [String: Any])
        let gz = try XCTUnwrap(manifest["gz"] as? [String: Any])
        XCTAssertEqual(database["sha256"] as? String, try box.sha256(restored))
        XCTAssertEqual(gz["sha256"] as? String, try box.sha256(box.backups + "/" + name))
        XCTAssertEqual(manifest["verified"] as? Bool, true)
        XCTAssertEqual(manifest["name"] as? String, name)
        let counts = try XCTUnwrap(manifest["row_counts"] as? [String: Int])
        XCTAssertEqual(counts["tasks"], 800)
        XCTAssertEqual(String(counts["tasks"]!), try box.query(restored, "SELECT count(*) FROM tasks"))

        // Self-contained: rollback-journal mode, so no -wal is needed next to it.
        XCTAssertEqual(try box.query(restored, "PRAGMA journal_mode"), "delete")
        XCTAssertEqual(try box.query(restored, "PRAGMA integrity_check"), "ok")

        // SHA256SUMS checks with the standard tool.
        let sums = try Sandbox.shell("cd '\(box.backups)' && sha256sum -c SHA256SUMS")
        XCTAssertEqual(sums.status, 0, sums.stdout + sums.stderr)
        XCTAssertTrue(sums.stdout.contains("\(name): OK"))
    }

    func testPermissionsAreOwnerOnly() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
        let fm = FileManager.default
        XCTAssertEqual((try fm.attributesOfItem(atPath: box.backups)[.posixPermissions] as? Int), 0o700)
        for name in try fm.contentsOfDirectory(atPath: box.backups) {
            XCTAssertEqual((try fm.attributesOfItem(atPath: box.backups + "/" + name)[.posixPermissions] as? Int), 0o600, name)
        }
    }

    func testLiveFilesAreUntouchedByABackup() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let before = try box.fingerprint(box.liveDir)
        XCTAssertEqual(try box.backup().status, 0)
        XCTAssertEqual(try box.fingerprint(box.liveDir), before)
    }

    /// A writer that crashed leaves a hot WAL: its commits are in the backup, and the live
    /// db, -wal and -shm stay byte-identical (FACTS.md 11); also when the -shm is gone.
    func testHotWALIsBackedUpWithoutBeingTouched() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 200)
        try box.makeHotWAL(inserts: 50)
        for removeShm in [false, true] {
            if removeShm { try FileManager.default.removeItem(atPath: box.db + "-shm") }
            let before = try box.fingerprint(box.liveDir)
            XCTAssertNotNil(before["abathur.db-wal"])
            let result = try box.backup()
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(try box.fingerprint(box.liveDir), before, "shm removed: \(removeShm)")
            let name = try XCTUnwrap(try box.backupFiles().last)
            let restored = box.root + "/hot-\(removeShm).db"
            XCTAssertEqual(try box.gunzip(name, to: restored).status, 0)
            XCTAssertEqual(try box.query(restored, "SELECT count(*) FROM state WHERE key LIKE 'hot-%'"), "50")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.backups).filter { $0.hasPrefix(".abathur-tmp-") }, [])
    }

    func testManualBackupsAreNamedByLabel() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup(["--manual"]).status, 0)
        XCTAssertEqual(try box.backup(["--label", "pre-migration"]).status, 0)
        let files = try box.backupFiles()
        XCTAssertEqual(files.count, 2)
        XCTAssertTrue(files.contains { $0.range(of: #"^manual_\d{8}_\d{6}\.db\.gz$"#, options: .regularExpression) != nil }, "\(files)")
        XCTAssertTrue(files.contains { $0.range(of: #"^pre-migration_\d{8}_\d{6}\.db\.gz$"#, options: .regularExpression) != nil }, "\(files)")
        let bad = try box.backup(["--label", "../evil"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertEqual(try box.backupFiles().count, 2)
    }

    func testStdoutStreamsAVerifiedGzipAndKeepsNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 200)
        let result = try box.backup(["--stdout"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let out = box.root + "/streamed.db.gz"
        try result.stdoutData.write(to: URL(fileURLWithPath: out))
        let inflate = try Sandbox.shell("gunzip -c '\(out)' > '\(box.root)/streamed.db'")
        XCTAssertEqual(inflate.status, 0, inflate.stderr)
        XCTAssertEqual(try box.query(box.root + "/streamed.db", "SELECT count(*) FROM tasks"), "200")
        XCTAssertEqual(try box.backupFiles(), [])
    }

    func testJSONOutputIsOneDocument() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        let result = try box.backup(["--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any])
        XCTAssertEqual(doc["ok"] as? Bool, true)
        XCTAssertEqual(doc["exit_code"] as? Int, 0)
        let backup = try XCTUnwrap((doc["result"] as? [String: Any])?["backup"] as? [String: Any])
        XCTAssertEqual(backup["verified"] as? Bool, true)
    }

    /// node_exporter textfile metrics: written whole (temp file and rename), success and failure.
    func testPrometheusTextfileMetrics() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        let prom = box.root + "/abathur_backup.prom"
        XCTAssertEqual(try box.backup(["--prometheus", prom]).status, 0)
        let text = try String(contentsOfFile: prom, encoding: .utf8)
        XCTAssertTrue(text.contains("# TYPE abathur_backup_last_success_timestamp_seconds gauge"), text)
        XCTAssertTrue(text.contains("abathur_backup_last_exit_code{command=\"take\"} 0"), text)
        XCTAssertTrue(text.contains("abathur_backup_check_ok{check=\"integrity_check\"} 1"), text)
        let success = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("abathur_backup_last_success_timestamp_seconds ") })
        let stamp = try XCTUnwrap(Double(success.split(separator: " ")[1]))
        XCTAssertEqual(stamp, Date().timeIntervalSince1970, accuracy: 120)

        // A failed run records its exit code and keeps the last success time.
        try FileManager.default.removeItem(atPath: box.db)
        XCTAssertEqual(try box.backup(["--prometheus", prom]).status, 8)
        let after = try String(contentsOfFile: prom, encoding: .utf8)
        XCTAssertTrue(after.contains("abathur_backup_last_exit_code{command=\"take\"} 8"), after)
        XCTAssertTrue(after.contains(String(success)), after)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.root).filter { $0.hasPrefix(".abathur-tmp-") }, [])
    }

    /// --verbose says what happened on stderr; without it a run piped to a file is silent.
    func testVerboseAndQuiet() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        let quiet = try box.backup()
        XCTAssertEqual(quiet.stderr, "")
        // Leave a temp file as a killed run would (its pid is gone): --verbose reports the sweep.
        let exited = try Sandbox.execute("/bin/sh", ["-c", "echo $$"])
        let dead = exited.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Data("x".utf8).write(to: URL(fileURLWithPath: box.backups + "/.abathur-tmp-\(dead)-dead-snapshot.db"))
        // And a private copy directory, as a killed read of a -wal without -shm leaves.
        let copyDir = box.backups + "/.abathur-tmp-\(dead)-dead-live-copy"
        try FileManager.default.createDirectory(atPath: copyDir, withIntermediateDirectories: false)
        try Data("x".utf8).write(to: URL(fileURLWithPath: copyDir + "/abathur.db"))
        let verbose = try box.backup(["--verbose"])
        XCTAssertEqual(verbose.status, 0)
        XCTAssertTrue(verbose.stderr.contains("swept 2 stale temp file"), verbose.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: copyDir))
    }
}
