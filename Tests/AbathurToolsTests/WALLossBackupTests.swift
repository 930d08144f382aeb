import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, item 1: a live `-wal` with a bad middle frame and commits after it. SQLite's view
/// of the database silently drops those commits (FACTS.md 10), so a snapshot taken through
/// SQLite lacks them. A backup must never call that a success.
final class WALLossBackupTests: XCTestCase {
    static let day = 86_400
    static let t0 = 1_780_000_000

    func json(_ run: Run) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], run.stdout)
    }

    /// Two good scheduled backups, days old, with a floor of two and one day of retention: any
    /// retention run after a third "verified" backup would prune one of them.
    func prepare() throws -> (Sandbox, [String]) {
        let box = try Sandbox()
        try "retention_days = 1\nkeep_min_verified = 2\n".write(toFile: box.config, atomically: true, encoding: .utf8)
        try box.makeDemoDatabase(rows: 300)
        var names: [String] = []
        for offset in [10, 9] {
            let run = try box.backup([], env: ["ABATHUR_NOW": "\(WALLossBackupTests.t0 - offset * WALLossBackupTests.day)"])
            XCTAssertEqual(run.status, 0, run.stderr)
            names.append(URL(fileURLWithPath: run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).lastPathComponent)
        }
        try box.makeHotWAL(inserts: 20)
        try box.damageMiddleWALFrame()
        return (box, names)
    }

    func testBackupExitsFourKeepsTheSnapshotAsUnverifiedAndPrunesNothing() throws {
        let (box, good) = try prepare()
        let live = try box.fingerprint(box.liveDir)
        let backupsBefore = try box.fingerprint(box.backups)

        let run = try box.backup([], env: ["ABATHUR_NOW": "\(WALLossBackupTests.t0)"])
        XCTAssertEqual(run.status, 4, run.stderr)
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-backup: error: \(box.db)-wal: "), run.stderr)
        XCTAssertTrue(run.stderr.contains("silently dropped"), run.stderr)
        XCTAssertTrue(run.stderr.contains("abathur-walfix"), run.stderr)
        XCTAssertEqual(run.stdout, "", "no path printed as if it had succeeded")
        XCTAssertEqual(try box.fingerprint(box.liveDir), live, "db, -wal and -shm byte-identical")

        // The good backups are untouched: no retention ran.
        let after = try box.fingerprint(box.backups)
        for name in good {
            XCTAssertEqual(after[name], backupsBefore[name], name)
            XCTAssertEqual(after[name + ".json"], backupsBefore[name + ".json"], name)
        }
        XCTAssertEqual(after["SHA256SUMS"], backupsBefore["SHA256SUMS"], "SHA256SUMS lists verified backups only")

        // The snapshot is kept, outside retention, marked not verified, with the finding.
        let kept = try box.backupFiles().filter { $0.hasPrefix("wal-loss_") }
        XCTAssertEqual(kept.count, 1, "\(kept)")
        XCTAssertTrue(run.stderr.contains(kept[0]), "the message names the kept copy: \(run.stderr)")
        let manifest = try box.manifest(kept[0])
        XCTAssertEqual(manifest["verified"] as? Bool, false)
        XCTAssertEqual(manifest["kind"] as? String, "manual")
        let loss = try XCTUnwrap(manifest["wal_loss"] as? [String: Any])
        XCTAssertGreaterThan(loss["dropped_commits"] as? Int ?? 0, 0)
        XCTAssertEqual(loss["wal"] as? String, box.db + "-wal")
        XCTAssertTrue(try Sandbox.shell("gunzip -t '\(box.backups)/\(kept[0])'").status == 0)

        // Every tool sees it as not verified: status counts two, restore lists it unverified
        // and refuses it by name, the newest-verified default still picks a good one.
        let status = try box.run("abathur-backup", ["status", "--json", "--backup-dir", box.backups])
        XCTAssertEqual((try json(status)["result"] as? [String: Any])?["verified_backups"] as? Int, 2, status.stdout)
        let listed = try box.run("abathur-restore", ["--list", "--json", "--backup-dir", box.backups, "--db", box.db])
        let rows = try XCTUnwrap((try json(listed)["result"] as? [String: Any])?["backups"] as? [[String: Any]])
        XCTAssertEqual(rows.first { ($0["name"] as? String) == kept[0] }?["state"] as? String, "unverified")
        let named = try box.run("abathur-restore", [kept[0], "--dry-run", "--no-services", "--backup-dir", box.backups, "--db", box.db])
        XCTAssertEqual(named.status, 3, named.stderr)
        XCTAssertTrue(named.stderr.contains("silently dropped"), named.stderr)

        // verify: its bytes are intact, but it was never a verified backup: a warning.
        let verify = try box.run("abathur-backup", ["verify", "--all", "--backup-dir", box.backups])
        XCTAssertEqual(verify.status, 1, verify.stderr)
        XCTAssertTrue(verify.stderr.contains(kept[0]) && verify.stderr.contains("not verified when taken"), verify.stderr)

        // A later run with the same WAL fails the same way and still prunes nothing.
        let again = try box.backup([], env: ["ABATHUR_NOW": "\(WALLossBackupTests.t0 + 60)"])
        XCTAssertEqual(again.status, 4, again.stderr)
        for name in good { XCTAssertNotNil(try box.fingerprint(box.backups)[name], name) }
    }

    func testStdoutWritesNothingAndExitsFour() throws {
        let (box, _) = try prepare()
        let live = try box.fingerprint(box.liveDir)
        let run = try box.backup(["--stdout"])
        XCTAssertEqual(run.status, 4, run.stderr)
        XCTAssertEqual(run.stdoutData.count, 0, "no partial snapshot streamed")
        XCTAssertTrue(run.stderr.contains("silently dropped"), run.stderr)
        XCTAssertEqual(try box.fingerprint(box.liveDir), live)
    }

    /// A torn tail (the last transaction half-written) loses nothing committed: the backup
    /// succeeds as before.
    func testTornTailIsNotALoss() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        try box.makeHotWAL(inserts: 5)
        let path = box.db + "-wal"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path))
        let run = try box.backup()
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try box.backupFiles().filter { $0.hasPrefix("abathur_") }.count, 1)
    }

    /// The same class in restore: a raw database file given as the source, whose `-wal`
    /// holds commits SQLite drops. Folding it in would silently lose them: exit 4, and
    /// nothing live changes.
    func testRestoreRefusesARawSourceWhoseWALDropsCommits() throws {
        let source = try Sandbox()
        try source.makeDemoDatabase(rows: 300)
        try source.makeHotWAL(inserts: 20)
        try source.damageMiddleWALFrame()
        let sourceFiles = try source.fingerprint(source.liveDir)
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        let live = try box.fingerprint(box.liveDir)
        let run = try box.run("abathur-restore", [source.db, "--db", box.db, "--backup-dir", box.backups, "--no-services"])
        XCTAssertEqual(run.status, 4, run.stderr)
        XCTAssertTrue(run.stderr.contains("\(source.db)-wal: "), run.stderr)
        XCTAssertTrue(run.stderr.contains("silently dropped"), run.stderr)
        XCTAssertEqual(try box.fingerprint(box.liveDir).filter { !$0.key.hasSuffix("abathur-lock") }, live)
        XCTAssertEqual(try source.fingerprint(source.liveDir), sourceFiles, "the source is only read")
    }

    /// And over a live database whose `-wal` hides commits: the settle before the swap lets
    /// SQLite drop them, so the restore says so (exit 1) and the raw `-wal` is in the safety
    /// copy byte for byte.
    func testRestoreOverADamagedLiveWALWarnsAndKeepsItInTheSafetyCopy() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        XCTAssertEqual(try box.backup().status, 0)
        try box.makeHotWAL(inserts: 20)
        try box.damageMiddleWALFrame()
        let wal = try box.sha256(box.db + "-wal")
        let run = try box.run("abathur-restore", ["--db", box.db, "--backup-dir", box.backups, "--no-services"])
        XCTAssertEqual(run.status, 1, run.stderr)
        let warning = run.stderrLines.filter { $0.contains("silently dropped") }
        XCTAssertEqual(warning.count, 1, run.stderr)
        XCTAssertTrue(warning[0].contains("abathur-walfix"), run.stderr)
        let safety = box.backups + "/safety"
        let copies = try FileManager.default.contentsOfDirectory(atPath: safety)
        XCTAssertEqual(copies.count, 1, "\(copies)")
        XCTAssertEqual(try box.sha256(safety + "/" + copies[0] + "/abathur.db-wal"), wal)
        XCTAssertTrue(warning[0].contains(copies[0]), run.stderr)
    }
}
