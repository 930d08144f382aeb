import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-backup status` (age of the newest verified backup, exit 1 past the maximum age)
/// and `abathur-backup verify` (re-checks stored backups, exit 3 on any bad one).
final class VerifyStatusTests: XCTestCase {
    /// 2025-06-15 14:40:00 UTC.
    let t0 = 1_750_000_800
    let day = 86_400

    // MARK: - helpers

    /// A sandbox with `count` scheduled backups, one day apart; names oldest first.
    func sandbox(backups count: Int, name: String = #function) throws -> (Sandbox, [String]) {
        let box = try Sandbox(name)
        try box.makeDemoDatabase(rows: 150)
        var names: [String] = []
        for i in 0..<count {
            let result = try box.backup([], env: ["ABATHUR_NOW": "\(t0 + i * day)"])
            XCTAssertEqual(result.status, 0, result.stderr)
            names.append(URL(fileURLWithPath: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).lastPathComponent)
        }
        XCTAssertEqual(try box.backupFiles(), names.sorted())
        return (box, names)
    }

    func path(_ box: Sandbox, _ name: String) -> String { box.backups + "/" + name }

    func status(_ box: Sandbox, at time: Int, _ args: [String] = []) throws -> Run {
        try box.backup(["status"] + args, env: ["ABATHUR_NOW": "\(time)"])
    }

    func verify(_ box: Sandbox, _ args: [String]) throws -> Run {
        try box.backup(["verify"] + args)
    }

    func flipByte(_ path: String) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: path))
    }

    func truncate(_ path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
    }

    /// Replaces the manifest's `gz.sha256` with another (well-formed) hex value.
    func forgeManifestHash(_ box: Sandbox, _ name: String) throws {
        let manifestPath = path(box, name) + ".json"
        var manifest = try box.manifest(name)
        var gz = try XCTUnwrap(manifest["gz"] as? [String: Any])
        let old = try XCTUnwrap(gz["sha256"] as? String)
        let other = String(repeating: "0", count: 63) + (old.hasSuffix("0") ? "1" : "0")
        XCTAssertNotEqual(other, old)
        gz["sha256"] = other
        manifest["gz"] = gz
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: manifestPath))
        XCTAssertEqual((try box.manifest(name)["gz"] as? [String: Any])?["sha256"] as? String, other)
    }

    /// The bytes of the backups themselves (`.db.gz` and `.json`), compared byte for byte
    /// (read in-process: cheaper than one `sha256sum` per file and per call).
    func backupFingerprint(_ box: Sandbox) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: box.backups)
        where name.hasSuffix(".db.gz") || name.hasSuffix(".db.gz.json") {
            result[name] = try Data(contentsOf: URL(fileURLWithPath: path(box, name)))
        }
        return result
    }

    func stdoutLines(_ run: Run) -> [String] { run.stdout.split(separator: "\n").map(String.init) }

    /// Asserts the per-backup verdicts on stdout and the stderr lines for the bad ones.
    func assertVerdicts(_ run: Run, ok: [String], failed: [String], file: StaticString = #filePath, line: UInt = #line) {
        let lines = stdoutLines(run)
        for p in ok {
            XCTAssertTrue(lines.contains("\(p): ok"), "\(p) reported ok:\n\(run.stdout)", file: file, line: line)
            XCTAssertFalse(run.stderr.contains(p), "nothing on stderr about a good backup:\n\(run.stderr)", file: file, line: line)
        }
        for p in failed {
            XCTAssertTrue(lines.contains { $0.hasPrefix("\(p): FAILED: ") }, "\(p) reported FAILED:\n\(run.stdout)", file: file, line: line)
            XCTAssertTrue(run.stderrLines.contains { $0.hasPrefix("abathur-backup: error: \(p): ") },
                          "one error line names \(p):\n\(run.stderr)", file: file, line: line)
        }
        XCTAssertEqual(lines.count, ok.count + failed.count, "one line per backup:\n\(run.stdout)", file: file, line: line)
        XCTAssertEqual(run.stderrLines.filter { $0.hasPrefix("abathur-backup: error: ") }.count, failed.count,
                       "one error line per bad backup:\n\(run.stderr)", file: file, line: line)
    }

    // MARK: - status

    /// 6. `status`: 1 with no backups, 0 when the newest is young enough (naming it), 1 past
    /// `--max-age`; `--json` carries `result.fresh`.
    func testStatusReportsTheAgeOfTheNewestVerifiedBackup() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 150)

        // No backup directory yet: not healthy.
        let missing = try status(box, at: t0)
        XCTAssertEqual(missing.status, 1, missing.stdout + missing.stderr)
        // An empty backup directory: no verified backup, a warning.
        try FileManager.default.createDirectory(atPath: box.backups, withIntermediateDirectories: true)
        let none = try status(box, at: t0)
        XCTAssertEqual(none.status, 1, none.stdout + none.stderr)
        let noneJSON = try status(box, at: t0, ["--json"])
        XCTAssertEqual(noneJSON.status, 1)
        let noneDoc = try XCTUnwrap(JSONSerialization.jsonObject(with: noneJSON.stdoutData) as? [String: Any], noneJSON.stdout)
        XCTAssertEqual((noneDoc["result"] as? [String: Any])?["fresh"] as? Bool, false)

        let taken = try box.backup([], env: ["ABATHUR_NOW": "\(t0)"])
        XCTAssertEqual(taken.status, 0, taken.stderr)
        let backupPath = taken.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let name = URL(fileURLWithPath: backupPath).lastPathComponent

        let fresh = try status(box, at: t0 + 60)
        XCTAssertEqual(fresh.status, 0, fresh.stdout + fresh.stderr)
        XCTAssertTrue(fresh.stdout.contains(backupPath), "status names the newest backup: \(fresh.stdout)")

        // Within the default 26 h, and within an explicit one.
        XCTAssertEqual(try status(box, at: t0 + 25 * 3600).status, 0)
        XCTAssertEqual(try status(box, at: t0 + 25 * 3600, ["--max-age", "26h"]).status, 0)

        let stale = try status(box, at: t0 + 3 * day, ["--max-age", "26h"])
        XCTAssertEqual(stale.status, 1, stale.stdout + stale.stderr)
        XCTAssertTrue(stale.stdout.contains(backupPath), stale.stdout)
        XCTAssertEqual(try status(box, at: t0 + 3 * day).status, 1, "the default maximum age is 26h")
        XCTAssertEqual(try status(box, at: t0 + 3 * day, ["--max-age", "4d"]).status, 0, "a longer --max-age is honoured")

        for (time, isFresh, code) in [(t0 + 60, true, 0), (t0 + 3 * day, false, 1)] {
            let json = try status(box, at: time, ["--json", "--max-age", "26h"])
            XCTAssertEqual(Int(json.status), code, json.stderr)
            let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any], json.stdout)
            XCTAssertEqual(doc["exit_code"] as? Int, code)
            let result = try XCTUnwrap(doc["result"] as? [String: Any], json.stdout)
            XCTAssertEqual(result["fresh"] as? Bool, isFresh, json.stdout)
            XCTAssertEqual(result["newest"] as? String, name, json.stdout)
        }
    }

    // MARK: - verify

    /// 7a. `verify --all` on good backups: exit 0, one `PATH: ok` line each, nothing on stderr.
    func testVerifyAllPassesOnGoodBackups() throws {
        let (box, names) = try sandbox(backups: 3)
        let run = try verify(box, ["--all"])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        assertVerdicts(run, ok: names.map { path(box, $0) }, failed: [])
        XCTAssertEqual(run.stderr, "", "a successful run prints nothing on stderr")
    }

    /// 7b. One flipped byte in the middle of one `.gz`: exit 3, that file named on stderr, the
    /// others still ok.
    func testVerifyAllFailsOnAFlippedByte() throws {
        let (box, names) = try sandbox(backups: 3)
        try flipByte(path(box, names[1]))
        let run = try verify(box, ["--all"])
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        assertVerdicts(run, ok: [path(box, names[0]), path(box, names[2])], failed: [path(box, names[1])])
    }

    /// 7c. A truncated `.gz`: exit 3.
    func testVerifyFailsOnATruncatedBackup() throws {
        let (box, names) = try sandbox(backups: 3)
        try truncate(path(box, names[0]))
        let run = try verify(box, ["--all"])
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        assertVerdicts(run, ok: [path(box, names[1]), path(box, names[2])], failed: [path(box, names[0])])

        let one = try verify(box, [names[0]])
        XCTAssertEqual(one.status, 3, one.stdout + one.stderr)
        assertVerdicts(one, ok: [], failed: [path(box, names[0])])
    }

    /// 7d. The manifest's `gz.sha256` replaced by another hex value: exit 3.
    func testVerifyFailsWhenTheManifestHashDiffers() throws {
        let (box, names) = try sandbox(backups: 2)
        try forgeManifestHash(box, names[1])
        let run = try verify(box, ["--all"])
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        assertVerdicts(run, ok: [path(box, names[0])], failed: [path(box, names[1])])

        let newest = try verify(box, [])
        XCTAssertEqual(newest.status, 3, newest.stdout + newest.stderr)
        assertVerdicts(newest, ok: [], failed: [path(box, names[1])])
    }

    /// Without a name, `verify` checks the newest backup only.
    func testVerifyDefaultsToTheNewestBackup() throws {
        let (box, names) = try sandbox(backups: 3)
        let good = try verify(box, [])
        XCTAssertEqual(good.status, 0, good.stdout + good.stderr)
        assertVerdicts(good, ok: [path(box, names[2])], failed: [])

        // A bad older backup is not the default's business...
        try flipByte(path(box, names[0]))
        let stillGood = try verify(box, [])
        XCTAssertEqual(stillGood.status, 0, stillGood.stdout + stillGood.stderr)
        assertVerdicts(stillGood, ok: [path(box, names[2])], failed: [])

        // ...a bad newest one is.
        try flipByte(path(box, names[2]))
        let bad = try verify(box, [])
        XCTAssertEqual(bad.status, 3, bad.stdout + bad.stderr)
        assertVerdicts(bad, ok: [], failed: [path(box, names[2])])
    }

    /// 8. `verify` never changes the backups, good or bad, and leaves no temp file behind.
    func testVerifyNeverChangesTheBackups() throws {
        let (box, names) = try sandbox(backups: 4)
        func check(_ args: [String], expect code: Int32, _ step: String) throws {
            let before = try backupFingerprint(box)
            let entries = Set(try FileManager.default.contentsOfDirectory(atPath: box.backups))
            let run = try verify(box, args)
            XCTAssertEqual(run.status, code, "\(step): \(run.stdout)\(run.stderr)")
            XCTAssertEqual(try backupFingerprint(box), before, "\(step): backups byte-identical")
            XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: box.backups)), entries,
                           "\(step): no file added or removed")
        }
        try check(["--all"], expect: 0, "good, --all")
        try check([], expect: 0, "good, newest")
        try check([names[1]], expect: 0, "good, by name")

        try flipByte(path(box, names[1]))
        try check(["--all"], expect: 3, "flipped byte, --all")
        try check([names[1]], expect: 3, "flipped byte, by name")
        try truncate(path(box, names[2]))
        try check(["--all"], expect: 3, "truncated, --all")
        try check([names[2]], expect: 3, "truncated, by name")
        try forgeManifestHash(box, names[3])
        try check(["--all"], expect: 3, "forged manifest hash, --all")
        try check([], expect: 3, "forged manifest hash, newest")
        XCTAssertEqual(try box.backupFiles(), names.sorted(), "every backup, bad ones too, is still there")
    }

    /// 9. `verify NAME` for a backup that does not exist is a usage error (exit 2).
    func testVerifyUnknownNameIsAUsageError() throws {
        let (box, names) = try sandbox(backups: 1)
        let before = try backupFingerprint(box)
        for missing in ["abathur_2001-01-01_00-00-00.db.gz", "abathur_2001-01-01_00-00-00", "nosuch"] {
            let run = try verify(box, [missing])
            XCTAssertEqual(run.status, 2, "\(missing): \(run.stdout)\(run.stderr)")
            XCTAssertFalse(run.stdout.contains(": ok"), "\(missing): nothing verified:\n\(run.stdout)")
            XCTAssertTrue(run.stderr.contains("abathur-backup: error: "), run.stderr)
        }
        XCTAssertEqual(try backupFingerprint(box), before)
        // The existing one, by name with and without the suffix, verifies alone.
        for given in [names[0], String(names[0].dropLast(".db.gz".count))] {
            let run = try verify(box, [given])
            XCTAssertEqual(run.status, 0, "\(given): \(run.stdout)\(run.stderr)")
            assertVerdicts(run, ok: [path(box, names[0])], failed: [])
        }
    }
}
