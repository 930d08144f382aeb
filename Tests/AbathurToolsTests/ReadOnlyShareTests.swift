import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, item 10 (second bullet): backups on a share mounted read-only (a DR site). The
/// readers (`abathur-backup verify`, `abathur-integrity --all-backups`, `abathur-restore`,
/// `--drill`) take no lock there and write nothing there: they inflate into temp_dir, keep the
/// safety copy beside the database, and a restore whose incident directory is on the share
/// warns (exit 1) and still completes. A writable directory is still locked.
final class ReadOnlyShareTests: XCTestCase {
    let restoreEnv = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]

    /// A demo database, two backups (the first before 50 more rows), and the backup directory
    /// bind-mounted read-only at `ROOT/share`. Returns the share and the backup names.
    func makeShare(_ box: Sandbox) throws -> (share: String, names: [String]) {
        try box.makeDemoDatabase(rows: 200)
        XCTAssertEqual(try box.backup([], env: ["ABATHUR_NOW": "1795773600"]).status, 0)
        XCTAssertEqual(try Sandbox.shell("sqlite3 '\(box.db)' \"INSERT INTO state(key, value, updated_at) VALUES ('after', 'x', 'now')\"").status, 0)
        XCTAssertEqual(try box.backup([], env: ["ABATHUR_NOW": "1795777200"]).status, 0)
        let share = box.root + "/share"
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        let mount = try Sandbox.shell("mount --bind '\(box.backups)' '\(share)' && mount -o remount,ro,bind '\(share)'")
        XCTAssertEqual(mount.status, 0, "this test needs root: \(mount.stderr)")
        addTeardownBlock { _ = try? Sandbox.shell("umount '\(share)'") }
        XCTAssertNotEqual(try Sandbox.shell("touch '\(share)/probe'").status, 0, "the share is read-only")
        return (share, try box.backupFiles())
    }

    /// Every name and hash in the share, the lock file included: nothing may be created there.
    func shareState(_ box: Sandbox, _ share: String) throws -> [String: String] {
        try box.fingerprint(share)
    }

    func testVerifyReadsAReadOnlyShare() throws {
        let box = try Sandbox()
        let (share, _) = try makeShare(box)
        let before = try shareState(box, share)
        let temp = box.root + "/tmp"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        let run = try box.run("abathur-backup", ["verify", "--all", "--backup-dir", share], env: ["ABATHUR_TEMP_DIR": temp])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertEqual(run.stderr, "")
        XCTAssertEqual(run.stdout.split(separator: "\n").filter { $0.hasSuffix(": ok") }.count, 2, run.stdout)
        XCTAssertEqual(try shareState(box, share), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [], "the inflated copies are gone")
    }

    func testIntegrityAllBackupsReadsAReadOnlyShare() throws {
        let box = try Sandbox()
        let (share, names) = try makeShare(box)
        let before = try shareState(box, share)
        let run = try box.run("abathur-integrity", ["--all-backups", "--backup-dir", share, "--db", box.db])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertEqual(run.stderr, "")
        for name in names { XCTAssertTrue(run.stdout.contains("\(share)/\(name): ok"), run.stdout) }
        XCTAssertEqual(try shareState(box, share), before)
    }

    /// The incident directory is on the share too: the record cannot be written, which is a
    /// warning (exit 1), not a reason to leave the database unrestored.
    func testRestoreByNameFromAReadOnlyShare() throws {
        let box = try Sandbox()
        let (share, names) = try makeShare(box)
        let before = try shareState(box, share)
        let oldest = names[0]
        let wanted = try XCTUnwrap((try box.manifest(oldest)["database"] as? [String: Any])?["sha256"] as? String)
        let current = try box.sha256(box.db)
        let run = try box.run("abathur-restore", [oldest, "--db", box.db, "--backup-dir", share], env: restoreEnv)
        XCTAssertEqual(run.status, 1, run.stdout + run.stderr)
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-restore: warning: "), run.stderr)
        XCTAssertTrue(run.stderr.contains("incident record could not be written"), run.stderr)
        XCTAssertEqual(try box.sha256(box.db), wanted, "the backup is restored")
        XCTAssertEqual(try shareState(box, share), before, "nothing written in the share")
        // The safety copy, which must exist, is beside the database.
        let safetyRoot = box.liveDir + "/.abathur-safety"
        let copies = try FileManager.default.contentsOfDirectory(atPath: safetyRoot)
        XCTAssertEqual(copies.count, 1, "\(copies)")
        XCTAssertTrue(run.stdout.contains("safety copy: \(safetyRoot)/\(copies[0])"), run.stdout)
        XCTAssertEqual(try box.sha256(safetyRoot + "/" + copies[0] + "/abathur.db"), current)
    }

    /// With a writable incident directory the same restore is a clean success.
    func testRestoreFromAReadOnlyShareWithAWritableIncidentDirectory() throws {
        let box = try Sandbox()
        let (share, names) = try makeShare(box)
        let before = try shareState(box, share)
        let incidents = box.root + "/incidents"
        let run = try box.run("abathur-restore", [names[0], "--db", box.db, "--backup-dir", share],
                              env: restoreEnv.merging(["ABATHUR_INCIDENT_DIR": incidents]) { $1 })
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertEqual(run.stderr, "")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: incidents).filter { $0.hasSuffix("-restore.md") }.count, 1)
        XCTAssertEqual(try shareState(box, share), before)
    }

    func testDrillFromAReadOnlyShare() throws {
        let box = try Sandbox()
        let (share, _) = try makeShare(box)
        let before = try shareState(box, share)
        let live = try box.fingerprint(box.liveDir)
        let temp = box.root + "/tmp"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        let run = try box.run("abathur-restore", ["--drill", "--db", box.db, "--backup-dir", share],
                              env: restoreEnv.merging(["ABATHUR_TEMP_DIR": temp]) { $1 })
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertEqual(run.stderr, "")
        XCTAssertEqual(try shareState(box, share), before)
        XCTAssertEqual(try box.fingerprint(box.liveDir), live)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [])
    }

    /// A writable backup directory is still locked: a held lock still makes verify exit 5.
    func testAWritableBackupDirectoryIsStillLocked() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
        // This test process holds the lock (flock locks conflict between open files).
        let fd = open(box.backups + "/.abathur.lock", O_RDWR | O_CREAT, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0)
        let run = try box.run("abathur-backup", ["verify", "--backup-dir", box.backups])
        XCTAssertEqual(run.status, 5, run.stderr)
        let integrity = try box.run("abathur-integrity", ["--all-backups", "--backup-dir", box.backups])
        XCTAssertEqual(integrity.status, 5, integrity.stderr)
    }
}
