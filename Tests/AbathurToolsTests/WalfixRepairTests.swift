import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-walfix repair` (issue 11; FACTS.md 7, 8, 10, 11): the forensic copy first, always;
/// dropped commits refused unless the operator chooses; the committed prefix recovered on a
/// copy and installed; `--beyond-break` keeping the intact commits after one damaged frame;
/// the old `-wal` renamed aside, never deleted.
final class WalfixRepairTests: XCTestCase {
    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// The one forensic copy holds the fixture's db, -wal and -shm, byte for byte.
    func assertForensicCopy(_ box: Sandbox, _ scenario: WALScenario, file: StaticString = #filePath, line: UInt = #line) throws {
        let copies = try box.forensicCopies()
        XCTAssertEqual(copies.count, 1, "one forensic copy in \(box.backups)/forensic: \(copies)", file: file, line: line)
        guard let copy = copies.first else { return }
        let kept = try box.hashes(in: copy)
        for (name, sha) in scenario.files {
            XCTAssertTrue(kept.contains(sha), "\(scenario.kind): the forensic copy holds \(name) as it was", file: file, line: line)
        }
    }

    /// The old -wal is in a live/.abathur-aside-*/ directory, byte for byte.
    func assertWALMovedAside(_ box: Sandbox, _ scenario: WALScenario, file: StaticString = #filePath, line: UInt = #line) throws {
        let wal = try XCTUnwrap(scenario.files["abathur.db-wal"], file: file, line: line)
        let aside = try box.asideDirectories().flatMap { try box.hashes(in: $0) }
        XCTAssertTrue(aside.contains(wal), "\(scenario.kind): the old -wal renamed into \(box.liveDir)/.abathur-aside-*/ as it was", file: file, line: line)
    }

    /// A settled single file: no -wal or -shm beside it.
    func assertSettled(_ box: Sandbox, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(exists(box.db + "-wal"), "\(context): a -wal beside the repaired database", file: file, line: line)
        XCTAssertFalse(exists(box.db + "-shm"), "\(context): a -shm beside the repaired database", file: file, line: line)
    }

    // MARK: - Refusals

    func testMidWALFlipIsRefusedAndNothingChanges() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.supersededFlip)
        let run = try box.walfix(["repair", "--no-services"])
        XCTAssertEqual(run.status, 4, run.stderr)
        XCTAssertEqual(try box.liveDatabaseFiles(), scenario.files, "db, -wal and -shm byte-identical")
        try assertForensicCopy(box, scenario)
        // The choices are explained, with the tables.
        let text = run.stdout + run.stderr
        XCTAssertTrue(text.contains("--accept-loss") && text.contains("--beyond-break"), text)
        XCTAssertTrue(text.contains("state"), text)

        // The same with --json: the refusal is exit 4 there too.
        let json = try box.walfix(["repair", "--no-services", "--json"])
        XCTAssertEqual(json.status, 4, json.stderr)
        XCTAssertEqual(try box.walfixJSON(json).document["exit_code"] as? Int, 4)
        XCTAssertEqual(try box.liveDatabaseFiles(), scenario.files)
    }

    func testADamagedFrameHeaderIsRefusedToo() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.damagedHeader)
        let run = try box.walfix(["repair", "--no-services"])
        XCTAssertEqual(run.status, 4, run.stderr)
        XCTAssertEqual(try box.liveDatabaseFiles(), scenario.files)
        try assertForensicCopy(box, scenario)
    }

    /// A WAL from another generation is refused; with --accept-loss the main file alone is
    /// installed and the whole -wal moved aside.
    func testForeignWALIsRefusedAndAcceptLossKeepsTheMainFileAlone() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.foreign)
        let alone = try box.sqliteView(withWAL: false)
        let refused = try box.walfix(["repair", "--no-services"])
        XCTAssertEqual(refused.status, 4, refused.stderr)
        XCTAssertEqual(try box.liveDatabaseFiles(), scenario.files)
        try assertForensicCopy(box, scenario)

        let accepted = try box.walfix(["repair", "--no-services", "--accept-loss"])
        XCTAssertEqual(accepted.status, 1, accepted.stderr)
        assertSettled(box, "foreign, --accept-loss")
        let after = try box.sqliteView()
        XCTAssertTrue(after.isSound, "\(after.integrity)")
        XCTAssertEqual(after.rowCounts, alone.rowCounts)
        XCTAssertEqual(after.contentSHA256, alone.contentSHA256, "the main file alone, nothing of the foreign WAL")
        try assertWALMovedAside(box, scenario)
    }

    /// A process with the database open: exit 7, nothing changed.
    func testAHolderIsRefusedWithExitSeven() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.tornTail)
        let reader = try SnapshotReader(box)
        defer { reader.kill() }
        let before = try box.liveDatabaseFiles()  // the reader rebuilt the -shm when it opened
        XCTAssertEqual(before["abathur.db"], scenario.files["abathur.db"])
        XCTAssertEqual(before["abathur.db-wal"], scenario.files["abathur.db-wal"])
        let run = try box.walfix(["repair", "--no-services"])
        XCTAssertEqual(run.status, 7, run.stderr)
        XCTAssertEqual(try box.liveDatabaseFiles(), before)
        XCTAssertEqual(try box.asideDirectories(), [])
    }

    // MARK: - Repairs

    /// A torn tail: the committed prefix, as SQLite recovers it on a copy, installed; the old
    /// -wal renamed aside byte for byte; the forensic copy kept.
    func testTornTailRecoversTheCommittedPrefix() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.tornTail)
        let run = try box.walfix(["repair", "--no-services", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        assertSettled(box, "torn tail")
        let after = try box.sqliteView()
        XCTAssertTrue(after.isSound, "\(after.integrity) \(after.errors)")
        XCTAssertEqual(after.rowCounts, scenario.view.rowCounts, "SQLite's recovery of the committed prefix")
        XCTAssertEqual(after.contentSHA256, scenario.view.contentSHA256)
        XCTAssertEqual(after.rowCounts["state"], scenario.expectedRows["state"])
        try assertWALMovedAside(box, scenario)
        try assertForensicCopy(box, scenario)

        let result = try box.walfixJSON(run).result
        if let aside = result["aside_directory"] as? String {
            XCTAssertEqual([aside], try box.asideDirectories(), "aside_directory names the aside directory")
        } else {
            XCTFail("no aside_directory in \(result)")
        }
        XCTAssertEqual(result["forensic_copy"] as? String, try box.forensicCopies().first)
        XCTAssertEqual(result["dropped_commits"] as? Int, 0)
    }

    /// Nothing committed beyond a break (clean, crash mid-transaction, reset): the same.
    func testWALsWithoutDroppedCommitsAreRepairedToWhatSQLiteRecovers() throws {
        for kind in [WALScenario.Kind.clean, .midTransaction, .reset] {
            let box = try Sandbox("WalfixRepair\(kind.rawValue)")
            let scenario = try box.makeScenario(kind)
            let run = try box.walfix(["repair", "--no-services"])
            XCTAssertEqual(run.status, 0, "\(kind): \(run.stderr)")
            assertSettled(box, "\(kind)")
            let after = try box.sqliteView()
            XCTAssertTrue(after.isSound, "\(kind): \(after.integrity) \(after.errors)")
            XCTAssertEqual(after.rowCounts, scenario.view.rowCounts, "\(kind)")
            XCTAssertEqual(after.contentSHA256, scenario.view.contentSHA256, "\(kind)")
            try assertWALMovedAside(box, scenario)
            try assertForensicCopy(box, scenario)
        }
    }

    /// No -wal: nothing to repair, exit 0, no forensic copy, nothing changed.
    func testNoWALHasNothingToRepair() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        let before = try box.liveDatabaseFiles()
        let run = try box.walfix(["repair", "--no-services"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try box.liveDatabaseFiles(), before)
        XCTAssertEqual(try box.forensicCopies(), [])
    }

    // MARK: - The operator's choices

    /// --accept-loss keeps exactly what SQLite's recovery keeps: exit 1.
    func testAcceptLossKeepsWhatSQLiteKeeps() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.supersededFlip)
        let run = try box.walfix(["repair", "--no-services", "--accept-loss", "--json"])
        XCTAssertEqual(run.status, 1, run.stderr)
        assertSettled(box, "--accept-loss")
        let after = try box.sqliteView()
        XCTAssertTrue(after.isSound, "\(after.integrity)")
        XCTAssertEqual(after.rowCounts, scenario.view.rowCounts)
        XCTAssertEqual(after.contentSHA256, scenario.view.contentSHA256, "the committed prefix, as SQLite recovers it")
        XCTAssertEqual(after.rowCounts["state"], scenario.expectedRows["state"])
        try assertWALMovedAside(box, scenario)
        try assertForensicCopy(box, scenario)
        XCTAssertEqual(try box.walfixJSON(run).result["lost_commits"] as? Int, scenario.droppedCommits)
    }

    /// --beyond-break on a flip whose damaged page a later commit rewrites recovers every
    /// commit: the same rows and content as the same writes on the undamaged files. Exit 0.
    /// The same for the damaged frame header (its page, agents', is rewritten later too).
    func testBeyondBreakRecoversEveryCommitWhenTheDamagedPageIsRewritten() throws {
        for kind in [WALScenario.Kind.supersededFlip, .damagedHeader] {
            let box = try Sandbox("WalfixBeyond\(kind.rawValue)")
            let scenario = try box.makeScenario(kind)
            let undamaged = try XCTUnwrap(scenario.undamaged)
            let run = try box.walfix(["repair", "--no-services", "--beyond-break", "--json"])
            XCTAssertEqual(run.status, 0, "\(kind): \(run.stderr)")
            assertSettled(box, "\(kind) --beyond-break")
            let after = try box.sqliteView()
            XCTAssertTrue(after.isSound, "\(kind): \(after.integrity)")
            XCTAssertEqual(after.rowCounts, undamaged.rowCounts, "\(kind): every commit recovered")
            XCTAssertEqual(after.contentSHA256, undamaged.contentSHA256, "\(kind): the same content as the undamaged writes")
            XCTAssertNotEqual(after.contentSHA256, scenario.view.contentSHA256, "\(kind)")
            try assertWALMovedAside(box, scenario)
            try assertForensicCopy(box, scenario)
            let result = try box.walfixJSON(run).result
            XCTAssertEqual(result["lost_commits"] as? Int, 0, "\(kind): \(result)")
        }
    }

    /// --beyond-break when the damaged page is never written again: either installed with
    /// exit 1, naming the page and its table, and sound; or exit 3 and nothing changed.
    func testBeyondBreakWithADamagedPageNeverRewritten() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.lastingFlip)
        let page = try XCTUnwrap(scenario.damagedPage)
        let table = try XCTUnwrap(scenario.damagedPageTable)
        let run = try box.walfix(["repair", "--no-services", "--beyond-break", "--json"])
        XCTAssertTrue([1, 3].contains(run.status), "exit 1 (installed, the damaged page named) or 3 (nothing changed); got \(run.status): \(run.stderr)")
        let result = try box.walfixJSON(run).result
        if run.status == 1 {
            XCTAssertEqual(result["damaged_page"] as? Int, page, "\(result)")
            XCTAssertEqual(result["damaged_page_table"] as? String, table, "\(result)")
            let warnings = run.stderr + ((try box.walfixJSON(run).document["warnings"] as? [String]) ?? []).joined(separator: "\n")
            XCTAssertTrue(warnings.contains("\(page)") && warnings.contains(table), "the warning names page \(page) of \(table): \(warnings)")
            assertSettled(box, "--beyond-break, damaged page kept")
            let after = try box.sqliteView()
            XCTAssertTrue(after.isSound, "a kept damaged page must pass the full checks: \(after.integrity)")
            XCTAssertEqual(after.rowCounts["state"], scenario.undamaged?.rowCounts["state"], "the intact commits after the break are kept")
            try assertWALMovedAside(box, scenario)
        } else {
            XCTAssertEqual(try box.liveDatabaseFiles(), scenario.files, "exit 3 changes nothing")
            XCTAssertEqual(try box.asideDirectories(), [])
        }
        try assertForensicCopy(box, scenario)
    }
}
