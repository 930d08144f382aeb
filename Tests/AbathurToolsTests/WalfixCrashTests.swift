import Foundation
import XCTest
@testable import AbathurTestSupport

/// A SIGKILL at every step of `abathur-walfix repair` (issue 11; FACTS.md 7, 8, 15): the
/// database path is left with its old files (a copy of db + `-wal` opens with the committed
/// rows) or with the repaired file and no `-wal`, never a mix and never anything lost; a rerun
/// then repairs it.
///
/// The fixture is a torn tail: the repaired database holds exactly what SQLite recovers from
/// the old files, and the old main file alone holds seven commits fewer, so a state that lost
/// the `-wal` (or replayed it onto the wrong file) shows.
final class WalfixCrashTests: XCTestCase {
    enum State: String { case old, new, bridged }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Keeps the live db, -wal and -shm as they are now, to put back before every crash.
    func saveLive(_ box: Sandbox) throws -> String {
        let saved = box.root + "/saved"
        try FileManager.default.createDirectory(atPath: saved, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: box.liveDir) {
            try FileManager.default.copyItem(atPath: box.liveDir + "/" + name, toPath: saved + "/" + name)
        }
        return saved
    }

    /// The live directory exactly as saved (aside directories of earlier runs gone), and no
    /// forensic copies of earlier runs (to keep the disk small).
    func resetLive(_ box: Sandbox, from saved: String) throws {
        try FileManager.default.removeItem(atPath: box.liveDir)
        try FileManager.default.createDirectory(atPath: box.liveDir, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: saved) {
            try FileManager.default.copyItem(atPath: saved + "/" + name, toPath: box.liveDir + "/" + name)
        }
        if exists(box.backups + "/forensic") { try FileManager.default.removeItem(atPath: box.backups + "/forensic") }
    }

    /// old: what SQLite sees through the db path and its -wal is the committed prefix (with
    /// the fixture's own main file and -wal when the repaired content differs from it); new:
    /// the db path holds another file with no -wal beside it, holding `repaired`; bridged: a
    /// -wal beside the db path through which SQLite sees exactly `repaired` (the repair's own
    /// way across: a -wal that turns the old file into the new one, and the new one into
    /// itself). Anything else (rows lost, pages mixed, the old main file without its -wal, the
    /// old -wal beside the new file) fails.
    func classify(_ box: Sandbox, _ scenario: WALScenario, repaired: SQLiteView, _ context: String,
                  file: StaticString = #filePath, line: UInt = #line) throws -> State? {
        guard exists(box.db) else {
            XCTFail("\(context): no database at \(box.db)", file: file, line: line)
            return nil
        }
        let seen = try box.sqliteView(file: file, line: line)
        let hasWAL = exists(box.db + "-wal")
        let sameMainFile = try box.sha256(box.db) == scenario.files["abathur.db"]
        let sameWAL = hasWAL ? try box.sha256(box.db + "-wal") == scenario.files["abathur.db-wal"] : false
        let state = "\(sameMainFile ? "the old main file" : "another main file") \(hasWAL ? (sameWAL ? "with the old -wal" : "with another -wal") : "alone")"
        XCTAssertTrue(seen.isSound, "\(context): \(state): \(seen.integrity.prefix(3)) \(seen.errors)", file: file, line: line)
        guard seen.isSound else { return nil }
        let old = scenario.view.contentSHA256
        switch seen.contentSHA256 {
        case repaired.contentSHA256 where !hasWAL && !sameMainFile:
            return .new
        case old where hasWAL && (repaired.contentSHA256 == old || (sameMainFile && sameWAL)):
            return .old
        case repaired.contentSHA256 where hasWAL:
            return .bridged
        default:
            XCTFail("\(context): \(state): SQLite sees \(seen.rowCounts) (\(seen.contentSHA256.prefix(12))): neither the old files (\(scenario.view.rowCounts), \(old.prefix(12))) nor the repaired database (\(repaired.rowCounts), \(repaired.contentSHA256.prefix(12)))", file: file, line: line)
            return nil
        }
    }

    /// After a crash, a plain rerun (same arguments) repairs: exit `status` or 0 (what is left
    /// may hold nothing to choose about, or nothing to repair), a single settled file holding
    /// `repaired`.
    func assertRerunRepairs(_ box: Sandbox, _ args: [String], status: Int32, repaired: SQLiteView, _ context: String,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let again = try box.walfix(["repair", "--no-services"] + args)
        XCTAssertTrue([0, status].contains(again.status), "\(context): rerun exit \(again.status): \(again.stderr)", file: file, line: line)
        XCTAssertFalse(exists(box.db + "-wal"), "\(context): rerun left a -wal", file: file, line: line)
        XCTAssertFalse(exists(box.db + "-shm"), "\(context): rerun left a -shm", file: file, line: line)
        let after = try box.sqliteView(withWAL: false, file: file, line: line)
        XCTAssertTrue(after.isSound, "\(context): rerun: \(after.integrity.prefix(3))", file: file, line: line)
        XCTAssertEqual(after.contentSHA256, repaired.contentSHA256, "\(context): rerun", file: file, line: line)
    }

    /// At most `limit` faults, spread evenly over each operation's calls (its first and last
    /// always in), so the test stays within its time in the normal suite.
    func spread(_ calls: [String: Int], ops: [String], limit: Int) -> [String] {
        let total = ops.reduce(0) { $0 + (calls[$1] ?? 0) }
        guard total > limit else { return FaultTrace.faults(calls, ops: ops, what: "crash") }
        var picked: [String] = []
        for op in ops {
            let n = calls[op] ?? 0
            guard n > 0 else { continue }
            let share = max(2, limit * n / total)
            let numbers = share >= n ? Array(1...n) : Array(Set((0..<share).map { 1 + $0 * (n - 1) / (share - 1) })).sorted()
            picked += numbers.map { "\(op):crash@\($0)" }
        }
        return picked
    }

    /// ABATHUR_FAULT=OP:crash@N for the open, write, fsync, rename and unlink calls a repair
    /// makes (all of the renames, fsyncs and unlinks; opens and writes spread when there are
    /// many), each followed by the classification and a rerun.
    func crashAtEveryStep(_ kind: WALScenario.Kind, _ args: [String], status: Int32,
                          repaired: (WALScenario) -> SQLiteView?, file: StaticString = #filePath, line: UInt = #line) throws {
        let started = Date()
        let box = try Sandbox("WalfixCrash\(kind.rawValue)")
        let scenario = try box.makeScenario(kind, file: file, line: line)
        let repaired = try XCTUnwrap(repaired(scenario), file: file, line: line)
        XCTAssertNotEqual(try box.sqliteView(withWAL: false).contentSHA256, scenario.view.contentSHA256,
                          "the main file alone must lack the WAL's commits for the test to mean anything", file: file, line: line)
        let saved = try saveLive(box)

        // Exactly the calls a repair makes, counted by a traced run from the same state.
        let calls = try FaultTrace.count(in: box.root) { env in
            let run = try box.walfix(["repair", "--no-services"] + args, env: env)
            XCTAssertEqual(run.status, status, run.stderr, file: file, line: line)
        }
        var faults = spread(calls, ops: ["rename", "fsync", "unlink"], limit: 1000)
        faults += spread(calls, ops: ["open", "write"], limit: max(10, 40 - faults.count))
        XCTAssertGreaterThan(faults.count, 10, "a repair makes more calls than that: \(calls)", file: file, line: line)
        XCTAssertGreaterThan(calls["rename"] ?? 0, 0, "a repair renames (the install, the -wal aside): \(calls)", file: file, line: line)

        var outcomes: [State: [String]] = [:]
        for fault in faults {
            try resetLive(box, from: saved)
            let run = try box.walfix(["repair", "--no-services"] + args, env: ["ABATHUR_FAULT": fault])
            XCTAssertEqual(run.status, 9, "\(fault): expected the injected SIGKILL, got exit \(run.status): \(run.stderr)", file: file, line: line)
            if let state = try classify(box, scenario, repaired: repaired, "\(kind) \(args) \(fault)", file: file, line: line) {
                outcomes[state, default: []].append(fault)
            }
            try assertRerunRepairs(box, args, status: status, repaired: repaired, "\(kind) \(args) \(fault)", file: file, line: line)
        }
        print("WalfixCrashTests \(kind) \(args): \(faults.count) injected crashes (calls \(calls)) in \(Int(Date().timeIntervalSince(started)))s; old: \(outcomes[.old, default: []]); bridged: \(outcomes[.bridged, default: []]); new: \(outcomes[.new, default: []])")
        XCTAssertFalse(outcomes[.old, default: []].isEmpty, "some crash must have left the old files: \(outcomes)", file: file, line: line)
        XCTAssertFalse(outcomes[.new, default: []].isEmpty, "some crash must have left the repaired file: \(outcomes)", file: file, line: line)
    }

    /// A torn tail: the repaired file holds what SQLite recovers from the old files.
    func testInjectedCrashAtEveryStepOfRepairLeavesTheOldOrTheRepairedFiles() throws {
        try crashAtEveryStep(.tornTail, [], status: 0, repaired: { $0.view })
    }

    /// --beyond-break on a flip whose damaged page is rewritten later: the repaired file holds
    /// every commit (the undamaged writes), the old files six commits fewer, so a crash that
    /// left the old main file without its -wal, or the old -wal beside the new file, shows.
    func testInjectedCrashAtEveryStepOfBeyondBreakLeavesTheOldOrTheRepairedFiles() throws {
        try crashAtEveryStep(.supersededFlip, ["--beyond-break"], status: 0, repaired: { $0.undamaged })
    }

    /// --accept-loss on the same flip: the repaired file holds the committed prefix, as the old
    /// files do through SQLite.
    func testInjectedCrashAtEveryStepOfAcceptLossLeavesTheOldOrTheRepairedFiles() throws {
        try crashAtEveryStep(.supersededFlip, ["--accept-loss"], status: 1, repaired: { $0.view })
    }
}
