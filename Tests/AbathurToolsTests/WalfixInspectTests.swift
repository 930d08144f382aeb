import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-walfix inspect` against every WAL fixture (issue 11; FACTS.md 7, 10, 11 and its
/// WAL section): its committed prefix is the one SQLite itself recovers on a copy (`PRAGMA
/// wal_checkpoint`'s log on a fresh open, and the rows the copy holds), the dropped commits
/// and the tables they touched are right, the first invalid frame is right, the exit code is
/// the contract's, and the db, `-wal` and `-shm` are never changed.
final class WalfixInspectTests: XCTestCase {
    static let lockName = ".abathur.db.abathur-lock"

    /// The live directory byte for byte, without the tool's lock file.
    func liveFiles(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.liveDir).filter { $0.key != Self.lockName }
    }

    /// Runs `inspect --json` on a fresh fixture of `kind` and checks it against SQLite's view;
    /// returns the sandbox, the fixture and the result object.
    @discardableResult
    func inspect(_ kind: WALScenario.Kind, file: StaticString = #filePath, line: UInt = #line) throws -> (Sandbox, WALScenario, [String: Any]) {
        let box = try Sandbox("WalfixInspect\(kind.rawValue)")
        let scenario = try box.makeScenario(kind, file: file, line: line)
        let before = try liveFiles(box)
        XCTAssertEqual(Set(before.keys), ["abathur.db", "abathur.db-wal", "abathur.db-shm"], file: file, line: line)

        let run = try box.walfix(["inspect", "--json"])
        let context = "\(kind): \(run.stderr)"
        XCTAssertEqual(run.status, scenario.inspectExit, context, file: file, line: line)
        let (document, result) = try box.walfixJSON(run, file: file, line: line)
        XCTAssertEqual(document["exit_code"] as? Int, Int(scenario.inspectExit), context, file: file, line: line)

        // The committed prefix is SQLite's own: its mxFrame after recovery on a copy.
        XCTAssertEqual(result["committed_frames"] as? Int, scenario.view.log, "\(kind): committed_frames vs SQLite's log", file: file, line: line)
        XCTAssertEqual(result["committed_frames"] as? Int, scenario.committedFrames, context, file: file, line: line)
        XCTAssertEqual(result["frames"] as? Int, scenario.frames, context, file: file, line: line)
        XCTAssertEqual(result["trailing_bytes"] as? Int, scenario.trailingBytes, context, file: file, line: line)
        XCTAssertEqual(result["dropped_commits"] as? Int, scenario.droppedCommits, context, file: file, line: line)
        XCTAssertEqual(result["page_size"] as? Int, 4096, context, file: file, line: line)

        // The first invalid frame: null when every whole frame is valid (a torn-off partial
        // frame may be named as the one after the last whole frame).
        let firstInvalid = result["first_invalid_frame"]
        XCTAssertNotNil(firstInvalid, "\(kind): first_invalid_frame is always present (null or int)", file: file, line: line)
        if let torn = scenario.tornFrame {
            XCTAssertTrue(firstInvalid is NSNull || firstInvalid as? Int == torn,
                          "\(kind): first_invalid_frame \(String(describing: firstInvalid)), expected null or \(torn)", file: file, line: line)
        } else if let expected = scenario.firstInvalidFrame {
            XCTAssertEqual(firstInvalid as? Int, expected, context, file: file, line: line)
        } else {
            XCTAssertTrue(firstInvalid is NSNull, "\(kind): first_invalid_frame \(String(describing: firstInvalid)), expected null", file: file, line: line)
        }
        if kind != .foreign {
            if let damage = scenario.isDamage { XCTAssertEqual(result["damage"] as? Bool, damage, context, file: file, line: line) }
            XCTAssertEqual(result["fits"] as? String, "yes", "\(kind): the committed prefix fits: \(result["fit_detail"] ?? "")", file: file, line: line)
        } else {
            XCTAssertEqual(result["fits"] as? String, "no", "\(kind): \(result["fit_detail"] ?? "")", file: file, line: line)
        }

        // The tables of the dropped commits, as the committed prefix leaves the database.
        let tables = try XCTUnwrap(result["dropped_tables"] as? [String: Int], "\(kind): dropped_tables", file: file, line: line)
        let named = Set(tables.keys)
        if scenario.droppedCommits == 0 {
            XCTAssertEqual(named, [], context, file: file, line: line)
        } else {
            XCTAssertTrue(named.isSuperset(of: scenario.droppedTables),
                          "\(kind): dropped_tables \(tables) must name \(scenario.droppedTables.sorted())", file: file, line: line)
            let allowed = scenario.droppedTables.union(scenario.damagedPageTable.map { [$0] } ?? [])
            XCTAssertTrue(named.isSubset(of: allowed), "\(kind): dropped_tables \(tables) beyond \(allowed.sorted())", file: file, line: line)
            XCTAssertTrue(tables.values.allSatisfy { $0 > 0 }, "\(tables)", file: file, line: line)
            XCTAssertGreaterThan(result["dropped_pages"] as? Int ?? 0, 0, context, file: file, line: line)
        }

        // Never written: db, -wal and -shm byte for byte, nothing added.
        XCTAssertEqual(try liveFiles(box), before, "\(kind): inspect changed the live files", file: file, line: line)
        return (box, scenario, result)
    }

    func testCleanWAL() throws {
        let (box, scenario, result) = try inspect(.clean)
        XCTAssertEqual(result["commits"] as? Int, 8)
        XCTAssertEqual(result["valid_frames"] as? Int, scenario.frames)
        XCTAssertEqual(result["uncommitted_frames"] as? Int, 0)
        XCTAssertTrue(result["invalid_reason"] is NSNull, "\(String(describing: result["invalid_reason"]))")
        XCTAssertEqual(result["header_checksum_valid"] as? Bool, true)

        // inspect is the default subcommand.
        let before = try liveFiles(box)
        let plain = try box.walfix(["--json"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(try box.walfixJSON(plain).result["committed_frames"] as? Int, scenario.view.log)
        XCTAssertEqual(try liveFiles(box), before)
    }

    func testCrashMidTransaction() throws {
        let (_, scenario, result) = try inspect(.midTransaction)
        XCTAssertEqual(result["commits"] as? Int, 5)
        XCTAssertGreaterThan(result["uncommitted_frames"] as? Int ?? 0, 0, "the spilled frames of the open transaction")
        XCTAssertGreaterThan(scenario.frames, scenario.committedFrames)
    }

    func testResetAfterRestartCheckpoint() throws {
        let (_, scenario, result) = try inspect(.reset)
        XCTAssertEqual(result["commits"] as? Int, 3)
        XCTAssertEqual(result["valid_frames"] as? Int, scenario.committedFrames)
        XCTAssertGreaterThan(scenario.frames, scenario.committedFrames, "stale frames follow")
        XCTAssertEqual(result["dropped_frames"] as? Int, 0, "frames of the old salt are not dropped commits")
    }

    func testTornTail() throws {
        let (_, scenario, result) = try inspect(.tornTail)
        XCTAssertEqual(result["commits"] as? Int, 7)
        XCTAssertGreaterThan(scenario.trailingBytes, 0)
    }

    func testFlipInAMiddleFrameWhosePageIsRewrittenLater() throws {
        let (_, scenario, result) = try inspect(.supersededFlip)
        XCTAssertEqual(result["commits"] as? Int, 6)
        XCTAssertEqual(result["valid_frames"] as? Int, scenario.committedFrames)
        XCTAssertFalse(result["invalid_reason"] is NSNull)
    }

    func testFlipInAMiddleFrameWhosePageIsNeverRewritten() throws {
        let (_, _, result) = try inspect(.lastingFlip)
        XCTAssertEqual(result["commits"] as? Int, 6)
    }

    func testDamagedFrameHeader() throws {
        let (_, _, result) = try inspect(.damagedHeader)
        XCTAssertEqual(result["commits"] as? Int, 6)
    }

    func testWALFromAnotherGenerationOfTheFile() throws {
        let (_, scenario, result) = try inspect(.foreign)
        XCTAssertEqual(result["commits"] as? Int, scenario.keptCommits)
        XCTAssertFalse(scenario.view.isSound, "SQLite on a copy: \(scenario.view.integrity.prefix(3))")
    }

    /// The dropped-commit report in the human output names the count and the tables.
    func testHumanReportNamesTheDroppedCommitsAndTheirTables() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.supersededFlip)
        let run = try box.walfix(["inspect"])
        XCTAssertEqual(run.status, 4, run.stderr)
        let text = run.stdout + run.stderr
        XCTAssertTrue(text.contains("6 commit"), text)
        for table in scenario.droppedTables { XCTAssertTrue(text.contains(table), "\(table) named: \(text)") }
    }

    func testNoWALIsHealthyAndAMissingDatabaseExitsEight() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        let healthy = try box.walfix(["inspect", "--json"])
        XCTAssertEqual(healthy.status, 0, healthy.stderr)
        XCTAssertEqual(try box.walfixJSON(healthy).result["committed_frames"] as? Int, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-wal"), "inspect made no -wal")

        try FileManager.default.removeItem(atPath: box.db)
        let missing = try box.walfix(["inspect"])
        XCTAssertEqual(missing.status, 8, missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db), "inspect did not create the database")
    }
}
