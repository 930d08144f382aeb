import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, item 10: paths with non-ASCII letters, spaces, `%`, `?`, `#` and a newline go
/// through all three tools. Before, the SQLite URI builder turned each UTF-8 byte into a
/// scalar of its own: `--db` under `ü` was exit 8 "unable to open database file", and a
/// `--to` under `ü` installed the database and then "rolled back" with exit 3.
final class PathCharacterTests: XCTestCase {
    /// One directory name with every character the issue lists, plus a `%` that looks like
    /// an escape (`%41` is "A" once decoded: it must stay `%41`).
    static let awkward = "ü spa ce %41 %zz ?q=1 #frag\nline"

    func run(_ box: Sandbox, _ tool: String, _ args: [String]) throws -> Run {
        try box.run(tool, args, env: ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""], timeout: 300)
    }

    func rows(_ path: String, _ table: String) throws -> String {
        // The sqlite3 CLI takes the path as a plain file name (no URI), so it is a fair judge.
        let out = try Sandbox.execute("/usr/bin/sqlite3", ["-readonly", path, "SELECT count(*) FROM \(table)"])
        XCTAssertEqual(out.status, 0, out.stderr)
        return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testAwkwardPathsThroughEveryTool() throws {
        let box = try Sandbox()
        let dir = box.root + "/" + PathCharacterTests.awkward
        let live = dir + "/live " + PathCharacterTests.awkward
        let backups = dir + "/backups ü"
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        let db = live + "/abathur ü.db"
        try box.makeDemoDatabase(rows: 300, at: db)
        let tasks = try rows(db, "tasks")
        let common = ["--db", db, "--backup-dir", backups]

        // Backup: --db and --backup-dir under the directory.
        let taken = try run(box, "abathur-backup", common)
        XCTAssertEqual(taken.status, 0, taken.stderr)
        let names = try FileManager.default.contentsOfDirectory(atPath: backups).filter { $0.hasSuffix(".db.gz") }
        XCTAssertEqual(names.count, 1)
        let gz = backups + "/" + names[0]
        XCTAssertTrue(FileManager.default.fileExists(atPath: gz + ".json"))

        // Integrity of the live database, of the backup by path, and of every backup.
        for args in [common, common + [gz], common + ["--all-backups"], common + [db]] {
            let checked = try run(box, "abathur-integrity", args)
            XCTAssertEqual(checked.status, 0, "\(args.last!): \(checked.stdout) \(checked.stderr)")
        }
        let verified = try run(box, "abathur-backup", ["verify"] + common)
        XCTAssertEqual(verified.status, 0, verified.stderr)

        // Restore from the backup into --db (change the live data first, so a restore shows).
        XCTAssertEqual(try Sandbox.execute("/usr/bin/sqlite3", [db, "DELETE FROM tasks"]).status, 0)
        XCTAssertEqual(try rows(db, "tasks"), "0")
        let restored = try run(box, "abathur-restore", common)
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try rows(db, "tasks"), tasks)

        // --to a new path under the directory, and from the backup given by path.
        let target = dir + "/to " + PathCharacterTests.awkward + ".db"
        let to = try run(box, "abathur-restore", common + ["--to", target, gz])
        XCTAssertEqual(to.status, 0, to.stderr)
        XCTAssertEqual(try rows(target, "tasks"), tasks)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.contains("aside") },
                       "nothing rolled back, no aside directory")

        // The drill restores into scratch space and compares with the live database.
        let drill = try run(box, "abathur-restore", ["--drill"] + common)
        XCTAssertEqual(drill.status, 0, drill.stderr)
    }

    /// A path with a newline in a diagnostic stays one line: the newline is shown as `\n`.
    func testDiagnosticsNamingAPathWithANewlineStayOneLine() throws {
        let box = try Sandbox()
        let dir = box.root + "/" + PathCharacterTests.awkward
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let missing = dir + "/missing.db"
        let shown = missing.replacingOccurrences(of: "\n", with: "\\n")
        for tool in ["abathur-backup", "abathur-integrity"] {
            let failed = try run(box, tool, ["--db", missing, "--backup-dir", dir + "/backups"])
            XCTAssertNotEqual(failed.status, 0)
            XCTAssertEqual(failed.stderrLines.count, 1, failed.stderr)
            XCTAssertTrue(failed.stderr.hasPrefix("\(tool): error: \(shown): "), failed.stderr)
        }
        // A result line naming such a path is one line on stdout too.
        let db = dir + "/abathur.db"
        try box.makeDemoDatabase(rows: 50, at: db)
        let checked = try run(box, "abathur-integrity", ["--db", db, "--backup-dir", dir + "/backups"])
        XCTAssertEqual(checked.status, 0, checked.stderr)
        XCTAssertTrue(checked.stdout.hasPrefix(db.replacingOccurrences(of: "\n", with: "\\n") + ": ok\n"), checked.stdout)
        // A monitoring plugin's status is its first line: --nagios stays one line too.
        let nagios = try run(box, "abathur-integrity", ["--nagios", "--db", missing, "--backup-dir", dir + "/backups"])
        XCTAssertEqual(nagios.status, 2, nagios.stdout)
        XCTAssertEqual(nagios.stdout.split(separator: "\n").count, 1, nagios.stdout)
        XCTAssertTrue(nagios.stdout.hasPrefix("ABATHUR-INTEGRITY CRITICAL - \(shown): "), nagios.stdout)
    }
}
