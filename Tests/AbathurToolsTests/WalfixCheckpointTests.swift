import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-walfix checkpoint` (issue 11; FACTS.md 9, 14): never reported as a success when
/// busy, the reader that blocks it named by pid; a plain checkpoint empties the WAL; a WAL
/// whose checkpoint would drop commits or write a foreign WAL into the file is refused
/// before SQLite opens anything.
final class WalfixCheckpointTests: XCTestCase {
    /// A reader holding a read transaction blocks a TRUNCATE checkpoint: exit 5, busy 1, the
    /// reader's pid named on the console and in --json blockers.
    func testAReaderHoldingATransactionMakesTruncateBusyAndIsNamed() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.clean)
        let reader = try SnapshotReader(box)
        defer { reader.kill() }

        let json = try box.walfix(["checkpoint", "--mode", "truncate", "--busy-timeout", "200", "--json"])
        XCTAssertEqual(json.status, 5, json.stderr)
        let (document, result) = try box.walfixJSON(json)
        XCTAssertEqual(document["exit_code"] as? Int, 5)
        XCTAssertEqual(result["busy"] as? Int, 1, "\(result)")
        XCTAssertEqual(result["mode"] as? String, "truncate")
        XCTAssertEqual(result["log"] as? Int, scenario.view.log, "\(result)")
        let blockers = try XCTUnwrap(result["blockers"] as? [[String: Any]], "\(result)")
        XCTAssertTrue(blockers.contains { ($0["pid"] as? Int).map(Int32.init) == reader.pid },
                      "the reader (pid \(reader.pid)) among the blockers: \(blockers)")

        let human = try box.walfix(["checkpoint", "--mode", "truncate", "--busy-timeout", "200"])
        XCTAssertEqual(human.status, 5, human.stderr)
        XCTAssertTrue((human.stdout + human.stderr).contains("\(reader.pid)"), "the reader's pid named: \(human.stdout) \(human.stderr)")

        // The committed data is all still there (a copy of db + -wal).
        reader.kill()
        let after = try box.sqliteView()
        XCTAssertEqual(after.contentSHA256, scenario.view.contentSHA256)
    }

    /// A passive checkpoint never waits: frames after the reader's snapshot stay uncopied, so
    /// it warns (exit 1) and names the reader.
    func testPassiveCheckpointBehindAReaderWarnsAndNamesIt() throws {
        let box = try Sandbox()
        _ = try box.makeScenario(.clean)
        let reader = try SnapshotReader(box)
        defer { reader.kill() }
        // More commits after the reader's snapshot, from a writer that dies.
        try DyingWriter.run(box.db, Sandbox.commitFunction + "for i in range(100, 104): commit(i)\n")
        let run = try box.walfix(["checkpoint", "--mode", "passive", "--json"])
        XCTAssertEqual(run.status, 1, run.stderr)
        let result = try box.walfixJSON(run).result
        XCTAssertEqual(result["busy"] as? Int, 0, "\(result)")
        let log = try XCTUnwrap(result["log"] as? Int), done = try XCTUnwrap(result["checkpointed"] as? Int)
        XCTAssertLessThan(done, log, "frames after the reader's snapshot stay uncopied: \(result)")
        let blockers = result["blockers"] as? [[String: Any]] ?? []
        XCTAssertTrue(blockers.contains { ($0["pid"] as? Int).map(Int32.init) == reader.pid }, "\(blockers)")
    }

    /// No reader: a passive checkpoint copies every frame SQLite recovers (log and checkpointed
    /// as SQLite's own on a copy); the default (truncate) then exits 0, busy 0, and leaves the
    /// -wal empty or gone; nothing is lost.
    func testPlainCheckpointEmptiesTheWAL() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.clean)
        let passive = try box.walfix(["checkpoint", "--mode", "passive", "--json"])
        XCTAssertEqual(passive.status, 0, passive.stderr)
        let copied = try box.walfixJSON(passive).result
        XCTAssertEqual(copied["busy"] as? Int, 0, "\(copied)")
        XCTAssertEqual(copied["log"] as? Int, scenario.view.log, "\(copied)")
        XCTAssertEqual(copied["checkpointed"] as? Int, scenario.view.log, "\(copied)")

        let run = try box.walfix(["checkpoint", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let result = try box.walfixJSON(run).result
        XCTAssertEqual(result["mode"] as? String, "truncate")
        XCTAssertEqual(result["busy"] as? Int, 0, "\(result)")
        XCTAssertEqual(result["checkpointed"] as? Int, result["log"] as? Int, "\(result)")
        XCTAssertEqual(result["wal_bytes_after"] as? Int, 0, "\(result)")
        let walSize = (try? FileManager.default.attributesOfItem(atPath: box.db + "-wal")[.size] as? Int) ?? 0
        XCTAssertEqual(walSize, 0, "the -wal is empty or gone")
        let alone = try box.sqliteView(withWAL: false)
        XCTAssertTrue(alone.isSound)
        XCTAssertEqual(alone.rowCounts, scenario.view.rowCounts)
        XCTAssertEqual(alone.contentSHA256, scenario.view.contentSHA256, "the main file alone now holds every commit")
    }

    /// Commits SQLite would drop, or a WAL that does not fit the file: refused, exit 4,
    /// nothing changed (not even the -shm: SQLite never opened the database).
    func testCheckpointRefusesWhatWouldLoseDataAndChangesNothing() throws {
        for kind in [WALScenario.Kind.supersededFlip, .foreign] {
            let box = try Sandbox("WalfixCheckpoint\(kind.rawValue)")
            let scenario = try box.makeScenario(kind)
            let run = try box.walfix(["checkpoint"])
            XCTAssertEqual(run.status, 4, "\(kind): \(run.stderr)")
            XCTAssertEqual(try box.liveDatabaseFiles(), scenario.files, "\(kind): db, -wal and -shm byte-identical")
        }
    }
}
