import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-integrity` (issue 4), black-box: each damage gives its finding (check name and
/// severity) and its exit code (SPEC.md: 0 ok, 1 warnings only, 4 a corrupt database, 3 a bad
/// backup, 7 a foreign database), and checking the live database never changes a byte of the
/// database, its `-wal` or its `-shm`, nor creates a file (FACTS.md 4, 11).
final class IntegrityTests: XCTestCase {
    /// 2025-06-15 14:40:00 UTC.
    let t0 = 1_750_000_800

    // MARK: - helpers

    struct Finding: Equatable {
        var check: String
        var severity: String
        var message: String
    }

    struct Target {
        var path: String
        var severity: String
        var findings: [Finding]

        func finding(_ check: String) -> Finding? { findings.first { $0.check == check } }
    }

    /// `abathur-integrity ARGS --db box.db --backup-dir box.backups`.
    @discardableResult
    func integrity(_ box: Sandbox, _ args: [String] = [], env: [String: String] = [:]) throws -> Run {
        try box.run("abathur-integrity", args + ["--db", box.db, "--backup-dir", box.backups], env: env)
    }

    /// The human output: `PATH: SEVERITY`, then `  severity check: message` per finding.
    func targets(_ run: Run, file: StaticString = #filePath, line: UInt = #line) -> [Target] {
        var result: [Target] = []
        for text in run.stdout.split(separator: "\n").map(String.init) {
            if text.hasPrefix("  ") {
                let body = text.drop { $0 == " " }
                let severity = String(body.prefix { $0 != " " })
                let rest = body.dropFirst(severity.count).drop { $0 == " " }
                guard let colon = rest.range(of: ": "), !result.isEmpty else {
                    XCTFail("not a finding line: \(text)", file: file, line: line)
                    continue
                }
                result[result.count - 1].findings.append(
                    Finding(check: String(rest[..<colon.lowerBound]), severity: severity, message: String(rest[colon.upperBound...])))
            } else if let colon = text.range(of: ": ", options: .backwards) {
                result.append(Target(path: String(text[..<colon.lowerBound]), severity: String(text[colon.upperBound...]), findings: []))
            } else {
                XCTFail("unexpected line: \(text)", file: file, line: line)
            }
        }
        return result
    }

    /// The one target of a run, checked to be `path`.
    func target(_ run: Run, _ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> Target {
        let all = targets(run, file: file, line: line)
        XCTAssertEqual(all.count, 1, run.stdout, file: file, line: line)
        let target = try XCTUnwrap(all.first, run.stdout + run.stderr, file: file, line: line)
        XCTAssertEqual(target.path, path, file: file, line: line)
        return target
    }

    /// Asserts the exit code, and a finding with that check name and severity (and text) on
    /// the run's single target; the target's severity is the worst finding's.
    @discardableResult
    func assertFinding(_ run: Run, _ path: String, check: String, severity: String, status: Int32, contains text: String? = nil,
                       file: StaticString = #filePath, line: UInt = #line) throws -> Finding {
        XCTAssertEqual(run.status, status, run.stdout + run.stderr, file: file, line: line)
        let target = try target(run, path, file: file, line: line)
        let finding = try XCTUnwrap(target.finding(check), "no \(check) finding in:\n\(run.stdout)", file: file, line: line)
        XCTAssertEqual(finding.severity, severity, finding.message, file: file, line: line)
        if let text { XCTAssertTrue(finding.message.contains(text), "\(finding.message) lacks \(text)", file: file, line: line) }
        let order = ["ok", "warning", "error", "critical"]
        let worst = target.findings.compactMap { order.firstIndex(of: $0.severity) }.max().map { order[$0] }
        XCTAssertEqual(target.severity, worst, run.stdout, file: file, line: line)
        return finding
    }

    /// `--json`, parsed: the document and its targets' findings.
    func json(_ run: Run, file: StaticString = #filePath, line: UInt = #line) throws -> (document: [String: Any], targets: [[String: Any]]) {
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], run.stdout, file: file, line: line)
        let result = try XCTUnwrap(document["result"] as? [String: Any], run.stdout, file: file, line: line)
        let targets = try XCTUnwrap(result["targets"] as? [[String: Any]], run.stdout, file: file, line: line)
        return (document, targets)
    }

    func jsonFindings(_ target: [String: Any]) -> [[String: Any]] { target["findings"] as? [[String: Any]] ?? [] }

    func evidence(_ run: Run, check: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let (_, targets) = try json(run, file: file, line: line)
        XCTAssertEqual(targets.count, 1, file: file, line: line)
        let finding = try XCTUnwrap(jsonFindings(try XCTUnwrap(targets.first)).first { $0["check"] as? String == check },
                                    "no \(check) in \(run.stdout)", file: file, line: line)
        return try XCTUnwrap(finding["evidence"] as? [String], file: file, line: line)
    }

    func sqlite(_ path: String, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try Sandbox.execute("/usr/bin/sqlite3", [path, sql])
        XCTAssertEqual(run.status, 0, "sqlite3 \(sql): \(run.stderr)", file: file, line: line)
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func makeHotWAL(_ box: Sandbox, inserts count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        try box.makeHotWAL(inserts: count, file: file, line: line)
    }

    func writeBytes(_ path: String, at offset: UInt64, _ bytes: Data) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offset)
        handle.write(bytes)
        try handle.close()
    }

    func flipBit(_ path: String, at offset: Int? = nil) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[offset ?? data.count / 2] ^= 0x04
        try data.write(to: URL(fileURLWithPath: path))
    }

    func fileSize(_ path: String) throws -> Int {
        try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    }

    static let allChecks = ["header", "wal", "integrity_check", "foreign_key_check", "schema", "indexes", "user_version",
                            "application_id", "row_counts"]

    // MARK: - the live database, healthy

    func testHealthyDatabaseExitsZeroAndChangesNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-wal"), "a cleanly closed WAL-mode database")
        let before = try box.fingerprint(box.liveDir)
        let run = try integrity(box)
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertEqual(run.stderr, "", "a successful run prints nothing on stderr")
        let target = try target(run, box.db)
        XCTAssertEqual(target.severity, "ok")
        XCTAssertEqual(target.findings.map(\.check), Self.allChecks)
        XCTAssertEqual(Set(target.findings.map(\.severity)), ["ok"], run.stdout)
        XCTAssertEqual(target.finding("application_id")?.message, "1094865992")
        XCTAssertEqual(target.finding("user_version")?.message, "9")
        XCTAssertEqual(target.finding("indexes")?.message, "41 indexes")
        XCTAssertEqual(try box.fingerprint(box.liveDir), before, "no -wal, no -shm, not a byte changed")
    }

    /// The service crashed (or runs): a hot WAL with committed transactions. The check reads
    /// through it without a checkpoint, and the counts include the WAL's commits.
    func testHotWALIsReadWithoutTouchingIt() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        try makeHotWAL(box, inserts: 40)
        let before = try box.fingerprint(box.liveDir)
        XCTAssertEqual(Set(before.keys), ["abathur.db", "abathur.db-wal", "abathur.db-shm"])
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "wal", severity: "ok", status: 0, contains: "committed frame(s) not yet checkpointed")
        XCTAssertEqual(try box.fingerprint(box.liveDir), before, "db, -wal and -shm byte-identical")

        let json = try integrity(box, ["--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertTrue(try evidence(json, check: "row_counts").contains("state 43"), "3 demo rows + 40 in the WAL")
        XCTAssertTrue(try evidence(json, check: "wal").contains { $0.hasSuffix("in 40 transactions") }, json.stdout)
        XCTAssertEqual(try box.fingerprint(box.liveDir), before)
    }

    /// A `-wal` without its `-shm`: SQLite cannot read it without creating one, so the tool
    /// reads a private copy in temp_dir, and leaves nothing there.
    func testHotWALWithoutShmIsReadFromAPrivateCopy() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        try makeHotWAL(box, inserts: 20)
        try FileManager.default.removeItem(atPath: box.db + "-shm")
        let temp = box.root + "/tmp"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        let before = try box.fingerprint(box.liveDir)
        let run = try integrity(box, ["--json"], env: ["ABATHUR_TEMP_DIR": temp])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertTrue(try evidence(run, check: "row_counts").contains("state 23"))
        XCTAssertEqual(try box.fingerprint(box.liveDir), before, "no -shm created, nothing checkpointed")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [], "the private copy is gone")
    }

    /// FACTS.md 10: a bad frame in the middle of a hot WAL with later commits. SQLite would
    /// drop them silently; the check says so (critical `wal`) and leaves the evidence as it is.
    func testBadMiddleWALFrameWithLaterCommitsIsCriticalAndUntouched() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        try makeHotWAL(box, inserts: 20)
        XCTAssertGreaterThanOrEqual(try box.walGeometry().frames, 20)
        let middle = try box.damageMiddleWALFrame()
        let before = try box.fingerprint(box.liveDir)

        let run = try integrity(box)
        try assertFinding(run, box.db, check: "wal", severity: "critical", status: 4, contains: "would be silently dropped")
        XCTAssertTrue(run.stderr.hasPrefix("abathur-integrity: error: \(box.db): wal: "), run.stderr)
        XCTAssertEqual(try box.fingerprint(box.liveDir), before, "db, -wal and -shm byte-identical")

        let json = try integrity(box, ["--json"])
        XCTAssertEqual(json.status, 4)
        XCTAssertTrue(try evidence(json, check: "wal").contains { $0.hasPrefix("first invalid frame \(middle): checksum") }, json.stdout)
        XCTAssertEqual(try box.fingerprint(box.liveDir), before)
    }

    /// A hot WAL whose header checksum is damaged: SQLite ignores the whole WAL (FACTS.md "WAL
    /// file", Recovery), so every committed transaction in it is silently lost at the next
    /// open, as with a bad middle frame. That is data loss, not a warning.
    func testHotWALWithDamagedHeaderIsCritical() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        try makeHotWAL(box, inserts: 20)
        try flipBit(box.db + "-wal", at: 28)
        let before = try box.fingerprint(box.liveDir)
        let run = try integrity(box)
        XCTAssertEqual(try target(run, box.db).finding("wal")?.severity, "critical",
                       "20 committed transactions that SQLite will drop: \(run.stdout)")
        XCTAssertEqual(run.status, 4)
        XCTAssertEqual(try box.fingerprint(box.liveDir), before)
    }

    // MARK: - bad input and damage, each with its finding and exit code

    func testEmptyFile() throws {
        let box = try Sandbox()
        _ = FileManager.default.createFile(atPath: box.db, contents: Data())
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "header", severity: "critical", status: 4, contains: "empty")
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-integrity: error: \(box.db): header: "), run.stderr)
        XCTAssertEqual(try fileSize(box.db), 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.liveDir), ["abathur.db"], "no -wal, no -journal")
    }

    /// SPEC.md, "which input gets which code": a missing database is 8 in every tool (an empty
    /// path names nothing, so it is missing too).
    func testZeroLengthPath() throws {
        let box = try Sandbox()
        let viaDb = try box.run("abathur-integrity", ["--db", "", "--backup-dir", box.backups])
        try assertFinding(viaDb, "", check: "file", severity: "critical", status: 8)
        let viaArgument = try integrity(box, [""])
        try assertFinding(viaArgument, "", check: "file", severity: "critical", status: 8)
    }

    func testMissingPathIsNotCreated() throws {
        let box = try Sandbox()
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "file", severity: "critical", status: 8, contains: "no such file")
        XCTAssertEqual(try box.fingerprint(box.liveDir), [:], "neither the database nor a -wal/-shm was created")
        let other = box.root + "/elsewhere.db"
        let byPath = try integrity(box, [other])
        try assertFinding(byPath, other, check: "file", severity: "critical", status: 8)
        XCTAssertFalse(FileManager.default.fileExists(atPath: other))
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.backups), "no backup directory created either")
    }

    func testNonSQLiteFile() throws {
        let box = try Sandbox()
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: box.db))
        let before = try box.fingerprint(box.liveDir)
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "header", severity: "critical", status: 4, contains: "not an SQLite database")
        XCTAssertEqual(try box.fingerprint(box.liveDir), before)
    }

    func testTruncatedDatabase() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 2000)
        let data = try Data(contentsOf: URL(fileURLWithPath: box.db))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: box.db))
        let before = try box.fingerprint(box.liveDir)
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "header", severity: "critical", status: 4, contains: "truncated")
        XCTAssertEqual(try box.fingerprint(box.liveDir), before)
    }

    /// Checkpointed, then one page in the middle overwritten with random bytes (its first
    /// byte made an invalid page type, so the damage is never a valid-looking page).
    func testPageOverwrittenWithRandomBytes() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 2000)
        XCTAssertEqual(try sqlite(box.db, "PRAGMA wal_checkpoint(TRUNCATE)"), "0|0|0")
        let pageSize = Int(try sqlite(box.db, "PRAGMA page_size"))!
        let pages = try fileSize(box.db) / pageSize
        var generator = SystemRandomNumberGenerator()
        var garbage = Data((0..<pageSize).map { _ in UInt8.random(in: 0...255, using: &generator) })
        garbage[0] = 0x07
        try writeBytes(box.db, at: UInt64((pages / 2) * pageSize), garbage)
        let before = try box.fingerprint(box.liveDir)
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "integrity_check", severity: "critical", status: 4)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-integrity: error: \(box.db): integrity_check: "), run.stderr)
        XCTAssertEqual(try box.fingerprint(box.liveDir), before)
    }

    /// Zeroes the root page of idx_tasks_status; returns the page number.
    func zeroIndexPage(_ box: Sandbox) throws -> Int {
        try box.makeDemoDatabase(rows: 2000)
        let root = try XCTUnwrap(Int(try sqlite(box.db, "SELECT rootpage FROM sqlite_schema WHERE type='index' AND name='idx_tasks_status'")))
        XCTAssertEqual(try sqlite(box.db, "PRAGMA wal_checkpoint(TRUNCATE)"), "0|0|0")
        let pageSize = Int(try sqlite(box.db, "PRAGMA page_size"))!
        try writeBytes(box.db, at: UInt64((root - 1) * pageSize), Data(count: pageSize))
        return root
    }

    func testIndexPageZeroed() throws {
        let box = try Sandbox()
        _ = try zeroIndexPage(box)
        let before = try box.fingerprint(box.liveDir)
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "integrity_check", severity: "critical", status: 4)
        XCTAssertEqual(try box.fingerprint(box.liveDir), before)
    }

    /// Issue 4: integrity_check "with all messages kept". SQLite 3.40 returns the messages
    /// ("Page N: btreeInitPage() returns error code 11", ...) and then fails the statement
    /// with SQLITE_CORRUPT; the messages read before the failure are the evidence.
    func testIndexPageZeroedKeepsIntegrityCheckMessages() throws {
        let box = try Sandbox()
        let root = try zeroIndexPage(box)
        let cli = try Sandbox.execute("/usr/bin/sqlite3", ["-readonly", box.db, "PRAGMA integrity_check"])
        XCTAssertTrue(cli.stdout.contains("Page \(root): "), "sqlite3 itself names the page: \(cli.stdout.prefix(300))")
        let run = try integrity(box, ["--json"], env: ["ABATHUR_TEMP_DIR": box.root])
        XCTAssertEqual(run.status, 4)
        let evidence = try evidence(run, check: "integrity_check")
        XCTAssertTrue(evidence.contains { $0.contains("Page \(root): ") },
                      "the integrity_check messages are lost: evidence \(evidence)")
    }

    /// All the messages, not SQLite's first 100; `--max-errors N` keeps N; `--quick` runs
    /// quick_check (which does not look inside indexes).
    func testIntegrityCheckKeepsEveryMessageAndMaxErrors() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        _ = try sqlite(box.db, "PRAGMA writable_schema=ON; UPDATE sqlite_schema SET sql='CREATE INDEX idx_tasks_status ON tasks(priority)' WHERE name='idx_tasks_status'")
        let run = try integrity(box, ["--json"])
        XCTAssertEqual(run.status, 4, run.stderr)
        let all = try evidence(run, check: "integrity_check")
        XCTAssertGreaterThan(all.count, 100, "more than SQLite's default 100")
        XCTAssertTrue(all.contains("row 1 missing from index idx_tasks_status"), "\(all.prefix(3))")

        let human = try integrity(box)
        try assertFinding(human, box.db, check: "integrity_check", severity: "critical", status: 4, contains: "\(all.count) problem(s)")

        let limited = try integrity(box, ["--max-errors", "5"])
        try assertFinding(limited, box.db, check: "integrity_check", severity: "critical", status: 4, contains: "--max-errors 5")
        XCTAssertEqual(try evidence(try integrity(box, ["--max-errors", "5", "--json"]), check: "integrity_check").count, 5)

        let quick = try integrity(box, ["--quick"])
        try assertFinding(quick, box.db, check: "quick_check", severity: "ok", status: 0)
        XCTAssertNil(try target(quick, box.db).finding("integrity_check"))
    }

    func testForeignKeyViolation() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        _ = try sqlite(box.db, "PRAGMA foreign_keys=OFF; INSERT INTO tasks(id, agent_id, title, status, created_at) VALUES (900001, 'agent-nobody', 'orphan', 'pending', 'now')")
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "foreign_key_check", severity: "error", status: 4, contains: "1 foreign-key violation")
        XCTAssertEqual(try target(run, box.db).finding("integrity_check")?.severity, "ok", "structurally fine: only the FK check sees it")
        let evidence = try evidence(try integrity(box, ["--json"]), check: "foreign_key_check")
        XCTAssertEqual(evidence.count, 1)
        XCTAssertTrue(evidence.first?.contains("table tasks rowid 900001") == true, "\(evidence)")
        XCTAssertTrue(evidence.first?.contains("parent agents") == true, "\(evidence)")
    }

    /// A dropped index: the data is intact, queries are slow: a warning, exit 1, when the
    /// expected indexes are configured by name (expect_indexes) or by count
    /// (expect_min_indexes).
    func testDroppedIndexIsAWarning() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let names = try sqlite(box.db, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema WHERE type='index' AND name NOT LIKE 'sqlite_%' ORDER BY name)")
        XCTAssertTrue(names.contains("idx_tasks_status"))
        try Data("# the indexes the service creates\nexpect_indexes = \(names)\n".utf8).write(to: URL(fileURLWithPath: box.config))
        XCTAssertEqual(try integrity(box).status, 0, "every named index present")
        _ = try sqlite(box.db, "DROP INDEX idx_tasks_status")

        let run = try integrity(box)
        try assertFinding(run, box.db, check: "indexes", severity: "warning", status: 1, contains: "missing index(es): idx_tasks_status")
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-integrity: warning: "), run.stderr)

        try Data().write(to: URL(fileURLWithPath: box.config))
        let byCount = try integrity(box, [], env: ["ABATHUR_EXPECT_MIN_INDEXES": "41"])
        try assertFinding(byCount, box.db, check: "indexes", severity: "warning", status: 1, contains: "40 indexes, expected at least 41")
    }

    /// stdin is not a database SQLite can read (FACTS.md 5): a usage error, never "corrupt".
    func testStdinIsRefusedAsUsage() throws {
        let box = try Sandbox()
        let run = try box.run("abathur-integrity", ["-"])
        XCTAssertEqual(run.status, 2, run.stderr)
        XCTAssertEqual(run.stderr, "abathur-integrity: error: reading a database from stdin is not supported yet; give a file\n")
    }

    /// With the default settings, an index the newest backup had and the database lost is
    /// named: the manifest is the reference.
    func testIndexDroppedSinceTheLastBackupIsNamedByDefault() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        XCTAssertEqual(try box.backup().status, 0)
        XCTAssertEqual(try integrity(box).status, 0)
        _ = try sqlite(box.db, "DROP INDEX idx_tasks_status")
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "indexes", severity: "warning", status: 1, contains: "idx_tasks_status")
    }

    func testMissingTable() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        // Milestone 3's tables go first, data table first (they reference document_index and each other: a foreign-key problem of its own).
        _ = try sqlite(box.db, "DROP TABLE document_embeddings_data; DROP TABLE document_embeddings; DROP TABLE document_index")
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "schema", severity: "error", status: 4, contains: "missing table(s): document_index")
        XCTAssertTrue(run.stderr.hasPrefix("abathur-integrity: error: \(box.db): schema: "), run.stderr)
    }

    /// A database that "passes" but lost its data: compared with the newest backup's
    /// manifest, a table that lost more than half its rows is a warning.
    func testTableEmptiedSinceTheLastBackupIsAWarning() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let name = try box.takeBackup(at: t0)
        let healthy = try integrity(box)
        try assertFinding(healthy, box.db, check: "row_counts", severity: "ok", status: 0, contains: name)

        _ = try sqlite(box.db, "DELETE FROM checkpoints")
        let run = try integrity(box)
        try assertFinding(run, box.db, check: "row_counts", severity: "warning", status: 1, contains: "checkpoints: 75 -> 0")
        XCTAssertEqual(try target(run, box.db).finding("integrity_check")?.severity, "ok")
        XCTAssertEqual(try target(run, box.db).finding("foreign_key_check")?.severity, "ok")

        // Losing less than half is not a warning (shrink_warning 0.5 by default).
        let small = try Sandbox()
        try small.makeDemoDatabase(rows: 300)
        try small.takeBackup(at: t0)
        _ = try sqlite(small.db, "DELETE FROM metrics WHERE id % 3 = 0")
        try assertFinding(try integrity(small), small.db, check: "row_counts", severity: "ok", status: 0)
    }

    func testApplicationIdMismatchIsRefused() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 150)
        let env = try integrity(box, [], env: ["ABATHUR_EXPECT_APPLICATION_ID": "42"])
        try assertFinding(env, box.db, check: "application_id", severity: "error", status: 7, contains: "expected 42")

        try Data("expect_application_id = 42\n".utf8).write(to: URL(fileURLWithPath: box.config))
        try assertFinding(try integrity(box), box.db, check: "application_id", severity: "error", status: 7)

        try Data("expect_application_id = 1094865992\nexpect_user_version = 9\n".utf8).write(to: URL(fileURLWithPath: box.config))
        try assertFinding(try integrity(box), box.db, check: "application_id", severity: "ok", status: 0)

        try Data("expect_user_version = 10\n".utf8).write(to: URL(fileURLWithPath: box.config))
        try assertFinding(try integrity(box), box.db, check: "user_version", severity: "warning", status: 1, contains: "expected 10")
    }

    // MARK: - backups

    func testBitFlippedBackupExits3() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let good = try box.takeBackup(at: t0)
        let bad = try box.takeBackup(at: t0 + 3600)
        try flipBit(box.backups + "/" + bad)
        let backups = try box.fingerprint(box.backups)
        let live = try box.fingerprint(box.liveDir)

        let one = try integrity(box, ["--backup", bad])
        try assertFinding(one, box.backups + "/" + bad, check: "gzip", severity: "critical", status: 3)
        XCTAssertTrue(one.stderr.hasPrefix("abathur-integrity: error: \(box.backups)/\(bad): gzip: "), one.stderr)

        let byPath = try integrity(box, [box.backups + "/" + bad])
        try assertFinding(byPath, box.backups + "/" + bad, check: "gzip", severity: "critical", status: 3)

        let all = try integrity(box, ["--all-backups"])
        XCTAssertEqual(all.status, 3, all.stdout + all.stderr)
        let reports = targets(all)
        XCTAssertEqual(Set(reports.map(\.path)), [box.backups + "/" + good, box.backups + "/" + bad])
        XCTAssertEqual(reports.first { $0.path.hasSuffix(good) }?.severity, "ok")
        XCTAssertEqual(reports.first { $0.path.hasSuffix(bad) }?.severity, "critical")

        XCTAssertEqual(try integrity(box, ["--backup", good]).status, 0)
        XCTAssertEqual(try box.fingerprint(box.backups).filter { !$0.key.hasPrefix(".") }, backups.filter { !$0.key.hasPrefix(".") })
        XCTAssertEqual(try box.fingerprint(box.liveDir), live)
    }

    /// A `.gz` that is a perfectly good gzip of a good database, but not the one its manifest
    /// describes (another backup's file under this name).
    func testBackupWhoseManifestHashDoesNotMatchExits3() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let older = try box.takeBackup(at: t0)
        _ = try sqlite(box.db, "INSERT INTO state(key, value, updated_at) VALUES ('later', 'x', 'now')")
        let newer = try box.takeBackup(at: t0 + 3600)
        let olderPath = box.backups + "/" + older
        try FileManager.default.removeItem(atPath: olderPath)
        try FileManager.default.copyItem(atPath: box.backups + "/" + newer, toPath: olderPath)

        let run = try integrity(box, ["--backup", older])
        try assertFinding(run, olderPath, check: "manifest", severity: "critical", status: 3, contains: "sha256")
        XCTAssertEqual(try target(run, olderPath).finding("gzip")?.severity, "ok", "the gzip itself is fine")
        XCTAssertEqual(try target(run, olderPath).finding("integrity_check")?.severity, "ok", "and so is the database inside")
        XCTAssertEqual(try integrity(box, ["--backup", newer]).status, 0)
        XCTAssertEqual(try integrity(box, ["--all-backups"]).status, 3)
    }

    /// PATH.db.gz is inflated in temp_dir (left clean) and compared with PATH.json when it is
    /// there; a plain .db (a gunzipped backup, rollback-journal mode) is checked in place.
    func testBackupFilesGivenByPath() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let name = try box.takeBackup(at: t0)
        let elsewhere = box.root + "/copy"
        let temp = box.root + "/tmp"
        for dir in [elsewhere, temp] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let gz = elsewhere + "/" + name
        try FileManager.default.copyItem(atPath: box.backups + "/" + name, toPath: gz)
        try FileManager.default.copyItem(atPath: box.backups + "/" + name + ".json", toPath: gz + ".json")
        let env = ["ABATHUR_TEMP_DIR": temp]

        let withManifest = try integrity(box, [gz], env: env)
        try assertFinding(withManifest, gz, check: "manifest", severity: "ok", status: 0)
        try assertFinding(withManifest, gz, check: "row_counts", severity: "ok", status: 0, contains: "equal the manifest")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [], "the inflated copy is removed")

        try FileManager.default.removeItem(atPath: gz + ".json")
        let without = try integrity(box, [gz], env: env)
        try assertFinding(without, gz, check: "manifest", severity: "warning", status: 1)

        let missingTemp = try integrity(box, [gz], env: ["ABATHUR_TEMP_DIR": box.root + "/no-such-dir"])
        XCTAssertNotEqual(missingTemp.status, 0, "temp_dir is where the copy goes")
        // Named by the space preflight, which looks at temp_dir before anything is written.
        XCTAssertTrue(missingTemp.stderr.contains(box.root + "/no-such-dir"), missingTemp.stderr)

        let plain = elsewhere + "/plain.db"
        XCTAssertEqual(try box.gunzip(name, to: plain).status, 0)
        let before = try box.fingerprint(elsewhere)
        let run = try integrity(box, [plain])
        try assertFinding(run, plain, check: "integrity_check", severity: "ok", status: 0)
        XCTAssertEqual(try box.fingerprint(elsewhere), before, "no -journal, -wal or -shm created")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [])
    }

    /// `--sample 50` twice covers all of 4 backups: least recently checked first, remembered
    /// in BACKUPDIR/.abathur-integrity-state.json.
    func testSampleFiftyTwiceCoversAllFourBackups() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 150)
        var names: [String] = []
        for i in 0..<4 { names.append(try box.takeBackup(at: t0 + i * 3600)) }
        XCTAssertEqual(Set(names).count, 4)

        let first = try integrity(box, ["--sample", "50"])
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let firstChecked = targets(first).map { URL(fileURLWithPath: $0.path).lastPathComponent }
        XCTAssertEqual(firstChecked.count, 2, first.stdout)
        let statePath = box.backups + "/.abathur-integrity-state.json"
        let state = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statePath))) as? [String: Any])
        XCTAssertEqual(Set(((state["checked"] as? [String: Any]) ?? [:]).keys), Set(firstChecked))

        let second = try integrity(box, ["--sample", "50"])
        XCTAssertEqual(second.status, 0, second.stdout + second.stderr)
        let secondChecked = targets(second).map { URL(fileURLWithPath: $0.path).lastPathComponent }
        XCTAssertEqual(secondChecked.count, 2, second.stdout)
        XCTAssertTrue(Set(firstChecked).isDisjoint(with: secondChecked), "the second run checks the others")
        XCTAssertEqual(Set(firstChecked + secondChecked), Set(names), "two runs of 50% cover all four")
        let after = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statePath))) as? [String: Any])
        XCTAssertEqual(Set(((after["checked"] as? [String: Any]) ?? [:]).keys), Set(names))
    }

    /// Issue 4 writes the option as `--sample N%`.
    func testSampleAcceptsAPercentSign() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 150)
        for i in 0..<4 { try box.takeBackup(at: t0 + i * 3600) }
        let run = try integrity(box, ["--sample", "25%"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(targets(run).count, 1, run.stdout)
    }

    // MARK: - output for scripts and monitors

    /// `--json` parses, and carries every finding the human output shows, with its evidence.
    func testJSONCarriesEveryFinding() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        try box.takeBackup(at: t0)
        _ = try sqlite(box.db, "PRAGMA foreign_keys=OFF; DELETE FROM checkpoints; INSERT INTO audit(task_id, agent_id, action, created_at) VALUES (777777, 'agent-1', 'x', 'now'); DROP INDEX idx_tasks_seq")
        let env = ["ABATHUR_EXPECT_MIN_INDEXES": "39"]
        let human = try integrity(box, [], env: env)
        let run = try integrity(box, ["--json"], env: env)
        XCTAssertEqual(run.status, 4, run.stderr)
        XCTAssertEqual(human.status, run.status)
        let (document, jsonTargets) = try json(run)
        XCTAssertEqual(document["exit_code"] as? Int, 4)
        XCTAssertEqual(document["ok"] as? Bool, false)
        XCTAssertEqual((document["result"] as? [String: Any])?["severity"] as? String, "error")
        XCTAssertEqual(jsonTargets.count, 1)
        let target = try XCTUnwrap(jsonTargets.first)
        XCTAssertEqual(target["path"] as? String, box.db)
        XCTAssertEqual(target["kind"] as? String, "live")
        let findings = jsonFindings(target)
        for finding in findings {
            XCTAssertNotNil(finding["evidence"] as? [String], "\(finding)")
            XCTAssertTrue(["ok", "warning", "error", "critical"].contains(finding["severity"] as? String ?? ""), "\(finding)")
        }
        let parsed = findings.map { Finding(check: $0["check"] as? String ?? "", severity: $0["severity"] as? String ?? "", message: $0["message"] as? String ?? "") }
        XCTAssertEqual(parsed, try self.target(human, box.db).findings, "the same findings as the human output, in order")
        XCTAssertEqual(parsed.map(\.check), Self.allChecks)
        let bySeverity = Dictionary(grouping: parsed, by: \.check).mapValues { $0.map(\.severity) }
        XCTAssertEqual(bySeverity["foreign_key_check"], ["error"])
        XCTAssertEqual(bySeverity["row_counts"], ["warning"])
        XCTAssertEqual(bySeverity["indexes"], ["warning"])
        XCTAssertEqual(bySeverity["integrity_check"], ["ok"])
    }

    /// `--nagios`: exactly one stdout line, the monitoring-plugin exit codes.
    func testNagiosPrintsOneLineWithThePluginCode() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 2000)
        func nagios(_ args: [String] = [], env: [String: String] = [:], expect status: Int32, _ state: String,
                    file: StaticString = #filePath, line: UInt = #line) throws {
            let run = try integrity(box, ["--nagios"] + args, env: env)
            XCTAssertEqual(run.status, status, run.stdout + run.stderr, file: file, line: line)
            let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertEqual(lines.count, 2, "one line and its newline: \(run.stdout)", file: file, line: line)
            XCTAssertTrue(run.stdout.hasPrefix("ABATHUR-INTEGRITY \(state)"), run.stdout, file: file, line: line)
        }
        try nagios(expect: 0, "OK")
        try nagios(env: ["ABATHUR_EXPECT_MIN_INDEXES": "42"], expect: 1, "WARNING")
        try nagios(["--backup", "abathur_2020-01-01_00-00-00.db.gz"], expect: 3, "UNKNOWN")

        XCTAssertEqual(try sqlite(box.db, "PRAGMA wal_checkpoint(TRUNCATE)"), "0|0|0")
        let pageSize = Int(try sqlite(box.db, "PRAGMA page_size"))!
        try writeBytes(box.db, at: UInt64((try fileSize(box.db) / pageSize / 2) * pageSize), Data(repeating: 0xA5, count: pageSize))
        try nagios(expect: 2, "CRITICAL")
    }

    func testPrometheusTextfile() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 150)
        let prom = box.root + "/integrity.prom"
        let run = try integrity(box, ["--prometheus", prom])
        XCTAssertEqual(run.status, 0, run.stderr)
        let text = try String(contentsOfFile: prom, encoding: .utf8)
        XCTAssertTrue(text.contains("abathur_integrity_severity{target=\"\(box.db)\"} 0"), text)
        XCTAssertTrue(text.contains("abathur_integrity_check_ok{target=\"\(box.db)\",check=\"integrity_check\"} 1"), text)
    }
}
