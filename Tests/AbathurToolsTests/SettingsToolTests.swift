import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 10, point 8: each setting has one range, whichever tool reads it, and a value out of
/// it is one usage line (exit 2) naming the key, the value and where it came from. Backup and
/// verify read `max_errors` as integrity and restore do.
final class SettingsToolTests: XCTestCase {
    func assertUsageError(_ run: Run, _ expected: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.status, 2, "\(what): \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stderrLines.count, 1, "\(what): one line: \(run.stderr)", file: file, line: line)
        XCTAssertTrue(run.stderr.contains(expected), "\(what): \(run.stderr)", file: file, line: line)
    }

    func testMaxErrorsHasOneRangeInEveryTool() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 50)
        XCTAssertEqual(try box.backup().status, 0)
        let common = ["--db", box.db, "--backup-dir", box.backups]
        let runs: [(String, [String])] = [("abathur-backup", []), ("abathur-backup", ["verify"]), ("abathur-integrity", []),
                                         ("abathur-restore", ["--dry-run"])]
        for (value, source) in [("0", "environment ABATHUR_MAX_ERRORS"), ("100000001", "environment ABATHUR_MAX_ERRORS")] {
            for (tool, args) in runs {
                let run = try box.run(tool, args + common, env: ["ABATHUR_MAX_ERRORS": value, "ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""])
                assertUsageError(run, "max_errors=\"\(value)\" (from \(source)): expected a whole number from 1 to 100000000",
                                 "\(tool) \(args.joined(separator: " ")) with max_errors=\(value)")
            }
        }
        // The upper end is accepted everywhere (a healthy database: 0, or 1 for a warning).
        for (tool, args) in runs where tool != "abathur-restore" {
            let run = try box.run(tool, args + common, env: ["ABATHUR_MAX_ERRORS": "100000000"])
            XCTAssertLessThanOrEqual(run.status, 1, "\(tool) \(args): \(run.stderr)")
        }
    }

    func testAFlagNamesItselfAsItsKeyDeclares() throws {
        let box = try Sandbox()
        let run = try box.run("abathur-backup", ["verify", "--backup-dir", box.backups, "--busy-timeout", "3600001"])
        assertUsageError(run, "busy_timeout_ms=\"3600001\" (from flag --busy-timeout): expected a whole number from 0 to 3600000", "--busy-timeout")
        let printed = try box.run("abathur-integrity", ["--print-config", "--max-errors", "7", "--quick"])
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertTrue(printed.stdout.contains("max_errors=7\t# flag --max-errors\n"), printed.stdout)
        XCTAssertTrue(printed.stdout.contains("quick_check=yes\t# flag --quick\n"), printed.stdout)
    }
}
