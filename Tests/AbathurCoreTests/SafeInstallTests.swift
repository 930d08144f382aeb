@testable import AbathurCore
import Foundation
import XCTest

/// The safe install on its own, in-process, on real files (no units, no health check): its
/// outcome is an enum, what it did is in its report and its timeline, and the database is
/// either the candidate or exactly what it was.
final class SafeInstallTests: XCTestCase {
    var root = ""
    var database: String { root + "/live/live.db" }

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "abathur-safe-install-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root + "/live", withIntermediateDirectories: true)
        try makeDatabase(database, rows: 10, wal: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func makeDatabase(_ path: String, rows: Int, wal: Bool) throws {
        // An empty file is an empty database to SQLite.
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        let db = try Connection(path: path, mode: .readWrite, busyTimeoutMs: 5000)
        try db.execute("""
        PRAGMA journal_mode=\(wal ? "WAL" : "DELETE");
        CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
        WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < \(rows)) INSERT INTO t(v) SELECT 'row ' || n FROM i;
        """)
    }

    /// A checked candidate beside the database: one self-contained file of `rows` rows.
    func candidate(rows: Int, claiming claimed: Int? = nil) throws -> SafeInstall.Candidate {
        let path = root + "/live/.abathur-candidate.db"
        try makeDatabase(path, rows: rows, wal: false)
        return SafeInstall.Candidate(path: path, sha256: try GzipFile.sha256(of: path).hex, rowCounts: ["t": Int64(claimed ?? rows)])
    }

    func install() -> SafeInstall {
        let check = DatabaseCheck.Options(quick: true, expectation: SchemaExpectation(tables: [], minIndexes: 0, indexes: []))
        let policy = SafeInstall.Policy(database: database, units: Units([]), health: nil, safetyRoot: root + "/safety", tag: "test",
                                        force: false, busyTimeoutMs: 5000, check: check)
        return SafeInstall(policy: policy, timeline: Timeline())
    }

    func rows() throws -> Int64 {
        try Connection(path: database, mode: .readOnly, busyTimeoutMs: 5000).integer("SELECT count(*) FROM t")
    }

    func testAGoodCandidateIsInstalledAfterASafetyCopy() throws {
        let candidate = try candidate(rows: 20)
        let install = install()
        let outcome = install.install(candidate)
        guard case .installed = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(outcome.result, .installed)
        XCTAssertEqual(try GzipFile.sha256(of: database).hex, candidate.sha256)
        XCTAssertFalse(FileManager.default.fileExists(atPath: candidate.path), "the candidate became the database")
        XCTAssertTrue(install.report.swapped)
        let safety = try XCTUnwrap(install.report.safetyCopy)
        XCTAssertEqual(safety.files.map(\.name).first, "live.db")
        XCTAssertEqual(install.timeline.steps.map(\.name), [
            "prove nothing holds the database", "safety copy", "prove nothing holds the database (again, before the swap)",
            "swap", "post-check",
        ])
        XCTAssertEqual(try rows(), 20)
    }

    /// The post-check finds other rows than the check counted: rolled back, through the same
    /// swap, to the database as it was; the installed one is kept in a second safety copy.
    func testAFailedPostCheckRollsBackToTheDatabaseAsItWas() throws {
        let candidate = try candidate(rows: 20, claiming: 21)
        let install = install()
        let outcome = install.install(candidate)
        guard case .rolledBack(let stage, let why) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(stage, .postCheck)
        XCTAssertEqual(why.kind, .checkFailed)
        XCTAssertEqual(why.message, "row counts differ from the candidate's")
        XCTAssertEqual(outcome.result, .rolledBack)
        XCTAssertEqual(try rows(), 10, "the database as it was")
        XCTAssertNotNil(install.report.rollbackSafetyCopy)
        XCTAssertEqual(install.timeline.steps.filter { !$0.ok }.map(\.name), ["post-check"])
        XCTAssertTrue(install.timeline.steps.contains { $0.name == "rollback: swap" && $0.ok })
    }

    /// A caller that builds its candidate with the service stopped gets the safety copy first;
    /// when it fails, nothing live changed.
    func testAPreparationThatFailsChangesNothing() throws {
        let before = try GzipFile.sha256(of: database).hex
        let install = install()
        var given: SafetyCopy?
        let outcome = install.install { safety in
            given = safety
            throw AbathurError(.corrupt, self.database + "-wal", "cannot recover it")
        }
        guard case .failed(let stage, let why) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(stage, .prepare)
        XCTAssertEqual(why.kind, .corrupt)
        XCTAssertEqual(outcome.result, .failed)
        XCTAssertNotNil(given?.path(of: .main), "the safety copy came before the preparation")
        XCTAssertEqual(try GzipFile.sha256(of: database).hex, before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/live"), ["live.db"], "nothing added, moved or left")
        XCTAssertFalse(install.report.swapped)
    }

    func testARefusalInThePreparationIsARefusal() throws {
        let outcome = install().install { _ in throw AbathurError(.inUse, self.database, "still in use") }
        guard case .refused(let why) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(why.kind, .inUse)
        XCTAssertEqual(outcome.result, .refused)
        XCTAssertEqual(try rows(), 10)
    }

    func testTheResultsReadAsTheIncidentRecordAndJSONSayThem() throws {
        let encoded = try [InstallResult.installed, .rolledBack, .refused, .failed].map {
            String(decoding: try JSONFormat.encode([$0]), as: UTF8.self).filter { $0 != "\n" }
        }
        XCTAssertEqual(encoded, [#"[  "restored"]"#, #"[  "rolled back"]"#, #"[  "refused"]"#, #"[  "failed"]"#])
    }
}
