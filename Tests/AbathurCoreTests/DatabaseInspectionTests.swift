@testable import AbathurCore
import Foundation
import XCTest

/// One inspection of a database, two judges (issue 10, point 1), in-process on real files
/// written by the `sqlite3` CLI: the facts are gathered once, past a corrupt page too, and the
/// admission judge (`DatabaseCheck`) and the integrity judge (`IntegrityJudge`) read the same
/// facts and agree on what is wrong.
final class DatabaseInspectionTests: XCTestCase {
    var dir = ""
    var db: String { dir + "/i.db" }

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "inspection-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let schema = """
        CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id), v TEXT);
        CREATE INDEX idx_child_v ON child(v);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
        INSERT INTO parent SELECT i, 'p' || i FROM n;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
        INSERT INTO child SELECT i, i, printf('%040d', i) FROM n;
        """
        XCTAssertEqual(try sqlite(schema), "")
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    @discardableResult
    func sqlite(_ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [db, sql]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, sql)
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    var expectation: SchemaExpectation { SchemaExpectation(tables: ["parent", "child"], minIndexes: 1, indexes: ["idx_child_v"]) }

    var admission: DatabaseCheck.Options { DatabaseCheck.Options(quick: false, expectation: expectation) }

    func integrityOptions() throws -> IntegrityOptions {
        var options = try IntegrityOptions(settings: Settings(flags: [:], configPath: "/dev/null", environment: [:]))
        options.expectation = expectation
        return options
    }

    func inspect() throws -> DatabaseInspection {
        try DatabaseInspection.file(db, options: DatabaseInspection.Options(quick: false, maxErrors: 1000), busyTimeoutMs: 1000)
    }

    func findings(_ inspection: DatabaseInspection) throws -> TargetReport {
        var report = TargetReport(path: db, kind: .file)
        let judge = IntegrityJudge(options: try integrityOptions())
        judge.judgeHeader(inspection, into: &report)
        judge.judgeContents(try XCTUnwrap(inspection.contents).get(), standard: .inPlace(reference: nil), into: &report)
        return report
    }

    func testAHealthyDatabaseIsReadOnceAndPassesBothJudges() throws {
        let inspection = try inspect()
        let contents = try XCTUnwrap(inspection.contents).get()
        XCTAssertEqual(contents.structure?.ok, true)
        XCTAssertEqual(try contents.schema.get().tables, ["child", "parent"])
        XCTAssertEqual(try contents.schema.get().indexes, ["idx_child_v"])
        XCTAssertEqual(try contents.rowCounts.get(), ["child": 2000, "parent": 2000])
        XCTAssertEqual(try contents.foreignKeys?.get().count, 0)

        let admitted = try DatabaseCheck.judge(inspection, options: admission)
        XCTAssertEqual(admitted.checks.map(\.name), ["header", "integrity_check", "foreign_key_check", "schema", "row_counts"])
        XCTAssertTrue(admitted.passed, "\(admitted.checks)")
        XCTAssertEqual(try findings(inspection).severity, .ok)
    }

    /// SQLite reports what it can and then fails the statement with SQLITE_CORRUPT: the
    /// inspection keeps the messages and the failure, the admission judge records a failed
    /// check (it used to throw, losing them), and the integrity judge a critical finding with
    /// the same evidence.
    func testAZeroedIndexPageIsReadPastAndFailedByBothJudges() throws {
        let root = try XCTUnwrap(Int(try sqlite("SELECT rootpage FROM sqlite_schema WHERE name = 'idx_child_v'")))
        let pageSize = try XCTUnwrap(Int(try sqlite("PRAGMA page_size")))
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: db))
        try handle.seek(toOffset: UInt64((root - 1) * pageSize))
        handle.write(Data(count: pageSize))
        try handle.close()

        let inspection = try inspect()
        let structure = try XCTUnwrap(try XCTUnwrap(inspection.contents).get().structure)
        XCTAssertFalse(structure.ok)
        XCTAssertTrue(structure.messages.contains { $0.contains("Page \(root)") } || structure.failure?.code.primary == .corrupt,
                      "\(structure.messages) \(String(describing: structure.failure))")

        let admitted = try DatabaseCheck.run(path: db, options: admission)
        let failed = try XCTUnwrap(admitted.failure)
        XCTAssertEqual(failed.name, "integrity_check")
        let report = try findings(inspection)
        let finding = try XCTUnwrap(report.findings.first { $0.check == "integrity_check" })
        XCTAssertEqual(finding.severity, .critical)
        XCTAssertEqual(finding.evidence.first, structure.messages.first ?? "stopped: \(structure.failure!.description)")
    }

    func testAForeignKeyViolationIsFailedByBothJudges() throws {
        try sqlite("PRAGMA foreign_keys=OFF; INSERT INTO child VALUES (900001, 424242, 'orphan')")
        let inspection = try inspect()
        let violations = try XCTUnwrap(try XCTUnwrap(inspection.contents).get().foreignKeys).get()
        XCTAssertEqual(violations.map(\.table), ["child"])
        XCTAssertEqual(violations.map(\.parent), ["parent"])

        let admitted = try DatabaseCheck.judge(inspection, options: admission)
        XCTAssertEqual(admitted.failure?.name, "foreign_key_check")
        XCTAssertEqual(try findings(inspection).findings.first { $0.check == "foreign_key_check" }?.severity, .error)
    }
}
