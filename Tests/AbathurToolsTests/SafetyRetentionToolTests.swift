import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 10, point 11: a successful restore prunes the safety copies, aside directories and
/// incident records of earlier runs (`safety_keep`, `safety_max_age`, never the newest safety
/// copy), and `abathur-backup status` counts what is left. The decisions themselves are
/// tested in-process (AbathurCoreTests.SafetyRetentionTests).
final class SafetyRetentionToolTests: XCTestCase {
    let env = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": "", "ABATHUR_SAFETY_KEEP": "2"]

    func makeDirectory(_ path: String, files: [String: Int]) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, bytes) in files {
            XCTAssertTrue(FileManager.default.createFile(atPath: path + "/" + name, contents: Data(repeating: 1, count: bytes)))
        }
    }

    func names(_ directory: String, _ include: (String) -> Bool = { _ in true }) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter(include).sorted()
    }

    func testRestorePrunesWhatEarlierRunsLeftAndStatusCountsIt() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
        let safety = box.backups + "/safety", incidents = box.backups + "/incidents"
        // Three old runs' leftovers of each kind, years older than safety_max_age (30d).
        let stamps = ["2020-01-01_00-00-00", "2020-01-02_00-00-00", "2020-01-03_00-00-00"]
        for stamp in stamps {
            try makeDirectory(safety + "/\(stamp)-restore", files: ["abathur.db": 1000, "abathur.db-wal": 100])
            try makeDirectory(box.liveDir + "/.abathur-aside-\(stamp)", files: ["abathur.db-shm": 10])
            try makeDirectory(incidents, files: ["\(stamp)-restore.json": 20, "\(stamp)-restore.md": 30])
        }
        // Not ours: a symlink with a safety copy's name, and a file in the incident directory.
        try FileManager.default.createSymbolicLink(atPath: safety + "/2019-01-01_00-00-00-restore", withDestinationPath: box.root)
        try makeDirectory(incidents, files: ["notes.txt": 5])

        let run = try box.run("abathur-restore", ["--db", box.db, "--backup-dir", box.backups, "--json"], env: env)
        XCTAssertEqual(run.status, 0, run.stderr)
        let document = try XCTUnwrap(JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], run.stdout)
        let result = try XCTUnwrap(document["result"] as? [String: Any], run.stdout)
        let newCopy = try XCTUnwrap((result["safety_copy"] as? [String: Any])?["directory"] as? String, run.stdout)
        let record = try XCTUnwrap(result["incident_record"] as? String, run.stdout)
        let pruned = Set(try XCTUnwrap(result["pruned"] as? [String], run.stdout))

        // Of each kind the two newest stay: this run's and the newest old one.
        let copies = try names(safety)
        XCTAssertEqual(copies, ["2019-01-01_00-00-00-restore", "2020-01-03_00-00-00-restore", URL(fileURLWithPath: newCopy).lastPathComponent].sorted())
        let records = try names(incidents) { $0.hasSuffix(".md") || $0.hasSuffix(".json") }
        let newBase = URL(fileURLWithPath: String(record.dropLast(".md".count))).lastPathComponent
        XCTAssertEqual(records, ["2020-01-03_00-00-00-restore.json", "2020-01-03_00-00-00-restore.md", newBase + ".json", newBase + ".md"].sorted())
        XCTAssertTrue(FileManager.default.fileExists(atPath: incidents + "/notes.txt"))
        // The restore may have moved companions aside itself: the two newest aside directories stay.
        let asides = try names(box.liveDir) { $0.hasPrefix(".abathur-aside-") }
        XCTAssertEqual(asides.count, 2, "\(asides)")
        XCTAssertTrue(asides.contains(".abathur-aside-2020-01-03_00-00-00") || !asides.contains { $0.hasPrefix(".abathur-aside-2020") }, "\(asides)")
        XCTAssertFalse(asides.contains(".abathur-aside-2020-01-01_00-00-00"), "\(asides)")
        var expected: Set<String> = [safety + "/2020-01-01_00-00-00-restore", safety + "/2020-01-02_00-00-00-restore",
                                     incidents + "/2020-01-01_00-00-00-restore", incidents + "/2020-01-02_00-00-00-restore"]
        for stamp in stamps where !asides.contains(".abathur-aside-\(stamp)") { expected.insert(box.liveDir + "/.abathur-aside-\(stamp)") }
        XCTAssertEqual(pruned, expected)

        // Status counts what is left, with its size, in text, JSON and metrics.
        let prom = box.root + "/status.prom"
        let status = try box.run("abathur-backup", ["status", "--db", box.db, "--backup-dir", box.backups, "--json", "--prometheus", prom], env: env)
        XCTAssertEqual(status.status, 0, status.stderr)
        let statusDocument = try XCTUnwrap(JSONSerialization.jsonObject(with: status.stdoutData) as? [String: Any], status.stdout)
        let leftovers = try XCTUnwrap((statusDocument["result"] as? [String: Any])?["safety"] as? [String: [String: Int]], status.stdout)
        let newCopyBytes = try FileManager.default.contentsOfDirectory(atPath: newCopy)
            .map { try XCTUnwrap(FileManager.default.attributesOfItem(atPath: newCopy + "/" + $0)[.size] as? Int) }.reduce(0, +)
        XCTAssertEqual(leftovers["safety_copies"], ["count": 2, "bytes": 1100 + newCopyBytes], status.stdout)
        XCTAssertEqual(leftovers["aside_directories"]?["count"], 2, status.stdout)
        XCTAssertEqual(leftovers["incident_records"]?["count"], 2, status.stdout)
        let metrics = try String(contentsOfFile: prom, encoding: .utf8)
        XCTAssertTrue(metrics.contains("abathur_backup_restore_leftovers{kind=\"safety_copies\"} 2"), metrics)

        let text = try box.run("abathur-backup", ["status", "--db", box.db, "--backup-dir", box.backups], env: env)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("safety copies: 2 ("), text.stdout)
        XCTAssertTrue(text.stdout.contains("aside directories: 2 ("), text.stdout)
        XCTAssertTrue(text.stdout.contains("incident records: 2 ("), text.stdout)
    }

    /// A restore that fails removes nothing: what is left is evidence.
    func testAFailedRestorePrunesNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
        let safety = box.backups + "/safety"
        for stamp in ["2020-01-01_00-00-00", "2020-01-02_00-00-00", "2020-01-03_00-00-00"] {
            try makeDirectory(safety + "/\(stamp)-restore", files: ["abathur.db": 1000])
        }
        // The only backup is damaged: the candidate fails its check (exit 3) after the locks
        // are taken, and the run writes its incident record.
        let gz = try XCTUnwrap(try box.backupFiles().first { $0.hasSuffix(".db.gz") })
        var bytes = try Data(contentsOf: URL(fileURLWithPath: box.backups + "/" + gz))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: box.backups + "/" + gz))
        let run = try box.run("abathur-restore", ["--db", box.db, "--backup-dir", box.backups], env: env)
        XCTAssertEqual(run.status, 3, run.stderr)
        XCTAssertFalse(try names(box.backups + "/incidents") { $0.hasSuffix(".md") }.isEmpty, "the failed run wrote its incident record")
        let left = try names(safety)
        XCTAssertEqual(left.filter { $0.hasPrefix("2020-") }.count, 3, "\(left)")
    }
}
