import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, item 9: a kill between publishing the `.gz` and its manifest. The next run that
/// holds the backup directory's lock finishes the publish from the killed run's own temp
/// manifest (fsynced before the `.gz` was linked, and checked against it), and brings
/// SHA256SUMS up to date. A `.gz` without any usable manifest is never deleted, and every
/// tool calls it incomplete: not listed as a restore target, failed by verify and integrity
/// (nothing proves it whole), not counted toward the floor, refused by name.
final class InterruptedPublishTests: XCTestCase {
    // In a backup run the first rename-class call is the link of the .gz, the second the link
    // of its manifest, the third the rename of SHA256SUMS (asserted below).
    static let beforeManifest = "rename:crash@2"
    static let beforeSums = "rename:crash@3"

    /// The backups with final names, oldest first.
    func finals(_ box: Sandbox) throws -> [String] {
        try box.backupFiles().filter { !$0.hasPrefix(".abathur-tmp-") }
    }

    func names(_ box: Sandbox) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: box.backups).sorted()
    }

    func sums(_ box: Sandbox) throws -> [String] {
        try String(contentsOfFile: box.backups + "/SHA256SUMS", encoding: .utf8).split(separator: "\n").map { String($0.split(separator: " ").last!) }.sorted()
    }

    /// One complete backup an hour ago, then a backup killed between its two links. Returns
    /// (the complete one, the interrupted one).
    func interruptedBackup(_ box: Sandbox) throws -> (String, String) {
        try box.makeDemoDatabase(rows: 300)
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try box.backup([], env: ["ABATHUR_NOW": "\(now - 3600)"]).status, 0)
        let good = try XCTUnwrap(try finals(box).first)
        let killed = try box.backup([], env: ["ABATHUR_FAULT": Self.beforeManifest, "ABATHUR_NOW": "\(now)"])
        XCTAssertNotEqual(killed.status, 0)
        let gz = try XCTUnwrap(try finals(box).first { $0 != good }, "the .gz got its final name")
        let all = try names(box)
        XCTAssertFalse(all.contains(gz + ".json"), "killed before the manifest's link")
        XCTAssertEqual(all.filter { $0.hasPrefix(".abathur-tmp-") && $0.hasSuffix("-" + gz + ".json") }.count, 1, "the temp manifest is left")
        XCTAssertEqual(try sums(box), [good])
        return (good, gz)
    }

    /// Before the next locked run: the unlocked tools call it incomplete (and their start-up
    /// sweep spares the temp manifest); then the next backup finishes the publish.
    func testTheNextBackupFinishesAPublishKilledBetweenTheTwoLinks() throws {
        let box = try Sandbox()
        let (good, gz) = try interruptedBackup(box)
        let temp = try XCTUnwrap(try names(box).first { $0.hasSuffix("-" + gz + ".json") })
        let tempManifest = try Data(contentsOf: URL(fileURLWithPath: box.backups + "/" + temp))

        let list = try box.restore(["--list"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertEqual(list.stdout, good + "\n", "`--list | head -1` must not pick the incomplete backup")
        XCTAssertTrue(list.stderr.contains("\(gz): incomplete backup, not listed"), list.stderr)
        let status = try box.run("abathur-backup", ["status", "--json", "--backup-dir", box.backups])
        let doc = try JSONSerialization.jsonObject(with: status.stdoutData) as! [String: Any]
        let result = doc["result"] as! [String: Any]
        XCTAssertEqual(result["verified_backups"] as? Int, 1)
        XCTAssertEqual(result["newest"] as? String, good)
        XCTAssertEqual(result["incomplete"] as? [String], [gz])
        XCTAssertTrue(try names(box).contains(temp), "an unlocked run's sweep spares the temp manifest")

        let next = try box.backup(["--verbose"])
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("finished the interrupted publish of \(gz)"), next.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: box.backups + "/" + gz + ".json")), tempManifest)
        XCTAssertEqual(try names(box).filter { $0.hasPrefix(".abathur-tmp-") }, [])
        let all = try finals(box)
        XCTAssertEqual(all.count, 3)
        XCTAssertEqual(try sums(box), all)
        let check = try Sandbox.shell("cd '\(box.backups)' && sha256sum -c SHA256SUMS")
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        let verify = try box.run("abathur-backup", ["verify", "--all", "--backup-dir", box.backups])
        XCTAssertEqual(verify.status, 0, verify.stderr)
    }

    /// With no usable manifest (the temp manifest is gone) the `.gz` stays, and every tool
    /// says it is incomplete: not corrupt, not a restore target, not counted, not pruned.
    func testABackupWithoutAnyManifestIsIncompleteForEveryToolAndNeverDeleted() throws {
        let box = try Sandbox()
        let (good, gz) = try interruptedBackup(box)
        for name in try names(box) where name.hasPrefix(".abathur-tmp-") { try FileManager.default.removeItem(atPath: box.backups + "/" + name) }
        let gzHash = try box.sha256(box.backups + "/" + gz)

        let list = try box.restore(["--list", "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let rows = ((try JSONSerialization.jsonObject(with: list.stdoutData) as! [String: Any])["result"] as! [String: Any])["backups"] as! [[String: Any]]
        XCTAssertEqual(rows.first { $0["name"] as? String == gz }?["state"] as? String, "incomplete")
        XCTAssertEqual(rows.first { $0["name"] as? String == good }?["state"] as? String, "verified")
        XCTAssertEqual(try box.restore(["--list"]).stdout, good + "\n")

        // verify and integrity (issue 10): the newest backup with a manifest is verified; the
        // incomplete one is named as incomplete, and fails (3): nothing proves it whole.
        for args in [["verify"], ["verify", "--all"], ["verify", gz]] {
            let verify = try box.run("abathur-backup", args + ["--backup-dir", box.backups])
            XCTAssertEqual(verify.status, 3, "\(args): \(verify.stderr)")
            XCTAssertTrue(verify.stderr.contains("\(gz): incomplete backup: no manifest"), verify.stderr)
            XCTAssertTrue(verify.stdout.contains("\(gz): FAILED: incomplete backup: no manifest"), verify.stdout)
        }
        XCTAssertTrue(try box.run("abathur-backup", ["verify", "--backup-dir", box.backups]).stdout.contains("\(good): ok"))
        for args in [["--backup", gz], ["--all-backups"]] {
            let integrity = try box.run("abathur-integrity", args + ["--backup-dir", box.backups, "--db", box.db],
                                        env: ["ABATHUR_TEMP_DIR": box.root])
            XCTAssertEqual(integrity.status, 3, "\(args): \(integrity.stdout)\(integrity.stderr)")
            XCTAssertTrue(integrity.stderr.contains("\(gz): manifest: incomplete backup: no manifest"), integrity.stderr)
        }

        let named = try box.restore([gz])
        XCTAssertEqual(named.status, 3, named.stderr)
        XCTAssertTrue(named.stderr.contains("\(gz): incomplete backup: it has no manifest"), named.stderr)

        // Retention: a floor of 2 is not met by the incomplete one, and it is never removed.
        let prune = try box.run("abathur-backup", ["prune", "--json", "--backup-dir", box.backups],
                                env: ["ABATHUR_RETENTION_DAYS": "1", "ABATHUR_KEEP_MIN_VERIFIED": "1",
                                      "ABATHUR_NOW": "\(Int(Date().timeIntervalSince1970) + 10 * 86400)"])
        XCTAssertEqual(prune.status, 0, prune.stderr)
        let decisions = ((try JSONSerialization.jsonObject(with: prune.stdoutData) as! [String: Any])["result"] as! [String: Any])["decisions"] as! [[String: Any]]
        let incomplete = try XCTUnwrap(decisions.first { $0["name"] as? String == gz })
        XCTAssertEqual(incomplete["keep"] as? Bool, true)
        XCTAssertTrue((incomplete["rule"] as? String ?? "").hasPrefix("incomplete"), "\(incomplete)")
        XCTAssertEqual(decisions.first { $0["name"] as? String == good }?["rule"] as? String, "one of the 1 newest verified backups")

        // Still there, byte for byte, after every tool.
        XCTAssertEqual(try box.sha256(box.backups + "/" + gz), gzHash)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.backups + "/" + gz + ".json"))
        XCTAssertEqual(try sums(box), [good])
    }

    /// Killed after the manifest's link, before SHA256SUMS: a complete backup that
    /// SHA256SUMS misses. The next locked run (here a verify) brings SHA256SUMS up to date.
    func testAKillBeforeSHA256SUMSIsRepairedByTheNextLockedRun() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try box.backup([], env: ["ABATHUR_NOW": "\(now - 3600)"]).status, 0)
        let good = try XCTUnwrap(try finals(box).first)
        let killed = try box.backup([], env: ["ABATHUR_FAULT": Self.beforeSums, "ABATHUR_NOW": "\(now)"])
        XCTAssertNotEqual(killed.status, 0)
        let all = try finals(box)
        XCTAssertEqual(all.count, 2)
        for name in all { XCTAssertTrue(FileManager.default.fileExists(atPath: box.backups + "/" + name + ".json"), name) }
        XCTAssertEqual(try sums(box), [good], "killed before SHA256SUMS was rewritten")

        let verify = try box.run("abathur-backup", ["verify", "--backup-dir", box.backups])
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertEqual(try sums(box), all)
        let check = try Sandbox.shell("cd '\(box.backups)' && sha256sum -c SHA256SUMS")
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertEqual(try names(box).filter { $0.hasPrefix(".abathur-tmp-") }, [])

        // A kill during retention, after both files of a backup went and before SHA256SUMS:
        // it lists a file that is gone, until the next locked run.
        for suffix in ["", ".json"] { try FileManager.default.removeItem(atPath: box.backups + "/" + good + suffix) }
        XCTAssertEqual(try box.run("abathur-backup", ["verify", "--backup-dir", box.backups]).status, 0)
        XCTAssertEqual(try sums(box), all.filter { $0 != good })
    }
}
