import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-restore --migrate` (issue 15), black box, against real demo databases, real
/// backups, real SQLite processes and real SIGKILLs: a schema change applied through the safe
/// path (units stopped, nothing holding the database, a verified `pre-migrate` backup, the file
/// on a copy in one transaction, the foreign-key audit and the expected schema, the swap), and
/// every way it must refuse and leave the live database as it was.
///
/// The migration files are written into each test's sandbox. `assertShippedMigrationApplies`
/// checks a file the package ships (`migrations/NAME.sql` at the repository root); the shipped
/// files land with another branch, so the lead calls it from tests once they are merged.
///
/// The machine has no abathur units: a fake `systemctl` first on PATH logs each call with the
/// SHA-256 of the database file at that moment, so the log shows when the swap happened. The
/// live files are only ever opened through copies (opening them would checkpoint).
final class MigrateTests: XCTestCase {
    static let units = "abathur-api abathur-workers abathur-document-sync"
    static let lockName = ".abathur.db.abathur-lock"
    /// The demo's 9 tables, the default `expect_tables`.
    static let tables = ["agents", "audit", "checkpoints", "document_index", "memory_entries", "metrics",
                         "sessions", "state", "tasks"]
    /// `expect_tables` without document_index: a migration that drops it removes no configured table.
    static let tablesButDocumentIndex = "tasks,agents,audit,checkpoints,state,metrics,sessions,memory_entries"

    /// Drops document_index (no table references it in the nine-table schema) and with it its 4
    /// indexes and SQLite's automatic one: 39 - 5 = 34, as expect_min_indexes counts them.
    static let dropDocumentIndex = """
    -- Drops the document index (a test migration).
    -- expect-absent: document_index
    -- expect-min-indexes: 34

    DROP TABLE document_index;

    """

    // MARK: - The world

    /// A sandbox with a fake `systemctl` in `root/bin` that appends "ARGS SHA256" to the log,
    /// SHA256 being the database file's hash when it was called, and a scratch temp_dir.
    /// The demo database without milestone 3's tables: the nine-table schema these tests
    /// reason about (nothing references document_index in it). The shipped migrations' tests
    /// use the full demo schema.
    func makeNineTableDatabase(_ box: Sandbox, rows: Int) throws {
        try box.makeDemoDatabase(rows: rows)
        let drop = try Sandbox.execute("/usr/bin/sqlite3", [box.db, "DROP TABLE document_embeddings_data; DROP TABLE document_embeddings"])
        XCTAssertEqual(drop.status, 0, drop.stderr)
    }

    func makeBox(_ name: String = #function) throws -> Sandbox {
        let box = try Sandbox.withStandInSystemctl(name)
        try mkdir(box.root + "/tmp")
        return box
    }

    func systemctlLog(_ box: Sandbox) -> String { box.systemctlLog }

    func systemctlCalls(_ box: Sandbox) -> [String] { box.systemctlCalls }

    func clearSystemctlLog(_ box: Sandbox) {
        try? FileManager.default.removeItem(atPath: systemctlLog(box))
    }

    func mkdir(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// `abathur-restore --migrate MIGRATION ARGS` against the sandbox, with the default units
    /// (the fake systemctl), no health check and a temp_dir of its own.
    @discardableResult
    func migrate(_ box: Sandbox, _ migration: String, _ args: [String] = [], env: [String: String] = [:]) throws -> Run {
        var environment = ["PATH": box.root + "/bin:/usr/bin:/bin", "ABATHUR_HEALTH_URL": "", "ABATHUR_TEMP_DIR": box.root + "/tmp"]
        for (key, value) in env { environment[key] = value }
        return try box.run("abathur-restore", ["--db", box.db, "--backup-dir", box.backups, "--migrate", migration] + args, env: environment)
    }

    /// Writes a migration file into the sandbox's `migrations` directory; returns its path.
    @discardableResult
    func writeMigration(_ box: Sandbox, _ name: String, _ text: String) throws -> String {
        let dir = box.root + "/migrations"
        try mkdir(dir)
        let path = dir + "/" + name + ".sql"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Copies the database at `path` (default: the live one) and its `-wal`, if any, with cp
    /// into a fresh directory and returns the copy. SQLite only ever opens the copy.
    func inspectionCopy(_ box: Sandbox, of path: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let source = path ?? box.db
        let dir = box.root + "/inspect-\(UUID().uuidString.prefix(8))"
        try mkdir(dir)
        let copy = dir + "/copy.db"
        XCTAssertEqual(try Sandbox.execute("/bin/cp", [source, copy]).status, 0, file: file, line: line)
        if exists(source + "-wal") {
            XCTAssertEqual(try Sandbox.execute("/bin/cp", [source + "-wal", copy + "-wal"]).status, 0, file: file, line: line)
        }
        return copy
    }

    func sqlite(_ path: String, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try Sandbox.execute("/usr/bin/sqlite3", [path, sql])
        XCTAssertEqual(run.status, 0, "sqlite3 \(path) \(sql): \(run.stderr)", file: file, line: line)
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    /// Rows per table of a copy (every table it has).
    func rowCounts(_ copy: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Int] {
        let tables = lines(try sqlite(copy, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                                      file: file, line: line))
        guard !tables.isEmpty else { return [:] }
        let sql = tables.map { "SELECT '\($0)', count(*) FROM \"\($0)\"" }.joined(separator: " UNION ALL ")
        var counts: [String: Int] = [:]
        for row in lines(try sqlite(copy, sql, file: file, line: line)) {
            let parts = row.split(separator: "|")
            if parts.count == 2, let n = Int(parts[1]) { counts[String(parts[0])] = n }
        }
        return counts
    }

    /// The schema as SQLite sees it: every object's type, name, table and SQL.
    func schema(_ copy: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try sqlite(copy, "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name", file: file, line: line)
    }

    /// What SQLite sees in the live database (through a copy): schema and rows per table.
    struct View: Equatable {
        var schema: String
        var rows: [String: Int]
    }

    func view(_ box: Sandbox, of path: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> View {
        let copy = try inspectionCopy(box, of: path, file: file, line: line)
        return View(schema: try schema(copy, file: file, line: line), rows: try rowCounts(copy, file: file, line: line))
    }

    /// The live directory byte for byte, without the tool's lock file.
    func liveFiles(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.liveDir).filter { $0.key != Self.lockName }
    }

    /// Every stored backup and manifest, and SHA256SUMS, byte for byte.
    func storedBackups(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.backups).filter { $0.key.hasSuffix(".db.gz") || $0.key.hasSuffix(".json") || $0.key == "SHA256SUMS" }
    }

    /// The `pre-migrate_YYYYMMDD_HHMMSS.db.gz` backups, sorted.
    func preMigrateBackups(_ box: Sandbox) throws -> [String] {
        try box.backupFiles().filter { $0.range(of: #"^pre-migrate_\d{8}_\d{6}([-_]\d+)?\.db\.gz$"#, options: .regularExpression) != nil }
    }

    /// Temp files of ours left anywhere a migration writes.
    func leftovers(_ box: Sandbox) throws -> [String] {
        var found: [String] = []
        for dir in [box.liveDir, box.backups, box.backups + "/safety", box.backups + "/incidents", box.root + "/tmp"] where exists(dir) {
            found += try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".abathur-tmp-") }.map { dir + "/" + $0 }
        }
        return found
    }

    /// A hot `-wal`: `count` rows in `state` committed by a process that died without closing.
    func commitLater(_ box: Sandbox, rows count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        try box.makeHotWAL(inserts: count, file: file, line: line)
    }

    /// The path after "PREFIX" on a line of stdout.
    func stdoutValue(_ run: Run, _ prefix: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let found = lines(run.stdout).first { $0.hasPrefix(prefix) }
        return String(try XCTUnwrap(found, "stdout has a '\(prefix)' line:\n" + run.stdout, file: file, line: line).dropFirst(prefix.count))
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any], path)
    }

    /// The `result` object of a `--json` run.
    func result(_ run: Run, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], run.stdout, file: file, line: line)
        return try XCTUnwrap(document["result"] as? [String: Any], "\(document)", file: file, line: line)
    }

    /// "stop" then "start" of the default units, the database as it was at both.
    func assertStoppedAndStartedAgain(_ box: Sandbox, hash: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(systemctlCalls(box), ["stop -- \(Self.units) \(hash)", "start -- \(Self.units) \(hash)"],
                       "the units were stopped, then started again with the database as it was", file: file, line: line)
    }

    /// Nothing live changed: db, -wal and -shm byte-identical, SQLite sees the same schema and
    /// rows, every backup that existed byte-identical, no temp file left.
    func assertNothingLiveChanged(_ box: Sandbox, live: [String: String], view before: View, backups: [String: String],
                                  _ context: String = "", file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try liveFiles(box), live, "\(context): live db, -wal and -shm byte-identical, nothing new beside them", file: file, line: line)
        XCTAssertEqual(try view(box, file: file, line: line), before, "\(context): SQLite sees the same schema and rows", file: file, line: line)
        // SHA256SUMS gains the restore point's line; every backup and manifest that was there stays.
        let now = try storedBackups(box)
        for (name, hash) in backups where name != "SHA256SUMS" {
            XCTAssertEqual(now[name], hash, "\(context): \(name) byte-identical", file: file, line: line)
        }
        if exists(box.backups + "/SHA256SUMS") {
            let sums = try Sandbox.shell("cd '\(box.backups)' && sha256sum -c SHA256SUMS")
            XCTAssertEqual(sums.status, 0, "\(context): " + sums.stdout + sums.stderr, file: file, line: line)
        }
        XCTAssertEqual(try leftovers(box), [], "\(context): no temp file left", file: file, line: line)
    }

    // MARK: - 1. A migration that drops a table

    /// DROP TABLE document_index over a database with a hot WAL: the table and its indexes are
    /// gone, every other table keeps its rows (the hot WAL's included), foreign keys are clean,
    /// the units were stopped with the old database and started with the new one, the
    /// pre-migrate backup is verified and holds the old schema and every write, the incident
    /// record has the schema diff; exit 1 and the new expect_tables line, as the default
    /// expect_tables lists document_index.
    func testDroppingATableAppliesAndWarnsWhenExpectTablesListsIt() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        try commitLater(box, rows: 25)
        let path = try writeMigration(box, "drop-document-index", Self.dropDocumentIndex)
        let before = try view(box)
        XCTAssertEqual(before.rows.keys.sorted(), Self.tables)
        XCTAssertGreaterThan(before.rows["document_index"] ?? 0, 0)
        let oldHash = try box.sha256(box.db)

        let run = try migrate(box, path)
        XCTAssertEqual(run.status, 1, "migrated, with a warning: \(run.stderr)")
        let remaining = Self.tablesButDocumentIndex
        XCTAssertTrue(lines(run.stdout).contains("set in the config: expect_tables = \(remaining)"), run.stdout)
        XCTAssertTrue(run.stderr.contains("document_index") && run.stderr.contains("expect_tables"), "the warning: \(run.stderr)")
        XCTAssertTrue(run.stdout.contains("migrated \(box.db) with \(path) in "), run.stdout)
        XCTAssertTrue(lines(run.stdout).contains { $0.hasPrefix("line 5: ") && $0.contains("DROP TABLE document_index") }, run.stdout)
        XCTAssertTrue(lines(run.stdout).contains { $0.hasPrefix("schema: ") && $0.contains("tables -1 (document_index)") }, run.stdout)
        XCTAssertTrue(lines(run.stdout).contains { $0.hasPrefix("units stopped for ") }, run.stdout)

        // The live database: document_index and its indexes gone, every other table as it was.
        let copy = try inspectionCopy(box)
        let after = try rowCounts(copy)
        var expected = before.rows
        expected["document_index"] = nil
        XCTAssertEqual(after, expected, "every other table keeps its rows, the hot WAL's commits included")
        XCTAssertEqual(try sqlite(copy, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'idx_document%'"), "0")
        XCTAssertEqual(try sqlite(copy, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"), "30")
        XCTAssertEqual(try sqlite(copy, "PRAGMA foreign_key_check"), "", "foreign keys clean")
        XCTAssertEqual(try sqlite(copy, "PRAGMA integrity_check"), "ok")
        XCTAssertEqual(try box.demo(["check", copy]).status, 0, "the demo's invariants hold")
        XCTAssertEqual(try sqlite(copy, "PRAGMA application_id"), "1094865992")
        XCTAssertEqual(try sqlite(copy, "PRAGMA user_version"), "9")
        let newHash = try box.sha256(box.db)
        XCTAssertEqual(systemctlCalls(box), ["stop -- \(Self.units) \(oldHash)", "start -- \(Self.units) \(newHash)"],
                       "the units were stopped with the old database and started with the migrated one")

        // The restore point: verified, complete, and it holds the old schema and every write.
        let points = try preMigrateBackups(box)
        let all = try box.backupFiles()
        XCTAssertEqual(points.count, 1, "\(all)")
        let point = try XCTUnwrap(points.first)
        XCTAssertEqual(try stdoutValue(run, "restore point: "), point)
        let manifest = try box.manifest(point)
        XCTAssertEqual(manifest["label"] as? String, "pre-migrate", "\(manifest)")
        XCTAssertEqual(manifest["row_counts"] as? [String: Int], before.rows, "the manifest counts the old rows")
        let verified = try box.run("abathur-backup", ["verify", point, "--backup-dir", box.backups, "--db", box.db],
                                   env: ["ABATHUR_TEMP_DIR": box.root + "/tmp"])
        XCTAssertEqual(verified.status, 0, "abathur-backup verify \(point): \(verified.stdout) \(verified.stderr)")
        let sums = try Sandbox.shell("cd '\(box.backups)' && sha256sum -c SHA256SUMS")
        XCTAssertEqual(sums.status, 0, sums.stdout + sums.stderr)
        let inflated = box.root + "/pre-migrate.db"
        XCTAssertEqual(try box.gunzip(point, to: inflated).status, 0)
        XCTAssertEqual(try schema(inflated), before.schema, "plain gunzip gives back the old schema, document_index included")
        XCTAssertEqual(try rowCounts(inflated), before.rows, "and every row, the hot WAL's commits included")

        // The incident record: .md and .json, with the schema diff.
        let md = try stdoutValue(run, "incident record: ")
        XCTAssertTrue(md.hasPrefix(box.backups + "/incidents/") && md.hasSuffix("-migrate.md"), md)
        let text = try String(contentsOfFile: md, encoding: .utf8)
        XCTAssertTrue(text.contains("## Timeline") && text.contains("## Schema diff") && text.contains("## Resolution"), text)
        XCTAssertTrue(text.contains("tables -1 (document_index)"), text)
        XCTAssertTrue(text.contains(point), "the record names the restore point:\n" + text)
        let record = try json(String(md.dropLast(3)) + ".json")
        XCTAssertEqual(record["exit_code"] as? Int, 1, "\(record)")
        let outcome = try XCTUnwrap(record["outcome"] as? [String: Any], "\(record)")
        XCTAssertEqual(outcome["result"] as? String, "migrated")
        let diff = try XCTUnwrap(outcome["diff"] as? [String: Any], "\(outcome)")
        XCTAssertEqual(diff["tables_removed"] as? [String], ["document_index"])
        XCTAssertEqual(diff["tables_added"] as? [String], [])
        XCTAssertEqual(Set(diff["indexes_removed"] as? [String] ?? []),
                       ["idx_document_hash", "idx_document_indexed", "idx_document_title", "idx_document_chunks",
                        "sqlite_autoindex_document_index_1"])
        let steps = try XCTUnwrap(outcome["steps"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        for step in ["lock", "stop units", "prove nothing holds the database", "safety copy", "pre-migrate backup", "copy the database",
                     "foreign keys", "expected schema", "full checks", "swap", "post-check", "start units"] {
            XCTAssertTrue(steps.contains(step), "step \(step) in \(steps)")
        }
        XCTAssertEqual(try leftovers(box), [])

        // The restore point takes the database back to the old schema.
        let back = try box.run("abathur-restore", ["--db", box.db, "--backup-dir", box.backups, "--no-services", point],
                               env: ["ABATHUR_HEALTH_URL": ""])
        XCTAssertEqual(back.status, 0, back.stderr)
        XCTAssertEqual(try view(box), before, "restoring \(point) brings document_index back with every row")
    }

    /// The same migration when expect_tables does not list document_index: exit 0, no warning,
    /// nothing on stderr.
    func testDroppingATableThatExpectTablesDoesNotListExitsZero() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        let path = try writeMigration(box, "drop-document-index", Self.dropDocumentIndex)
        let before = try view(box)

        let run = try migrate(box, path, env: ["ABATHUR_EXPECT_TABLES": Self.tablesButDocumentIndex])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "", "a successful run with stdout not a terminal prints nothing on stderr")
        XCTAssertFalse(run.stdout.contains("set in the config"), run.stdout)
        var expected = before.rows
        expected["document_index"] = nil
        XCTAssertEqual(try view(box).rows, expected)
        XCTAssertEqual(systemctlCalls(box).map { String($0.prefix(6)) }, ["stop -", "start "])
        XCTAssertEqual(try preMigrateBackups(box).count, 1)
        let record = try json(String(try stdoutValue(run, "incident record: ").dropLast(3)) + ".json")
        XCTAssertEqual(record["exit_code"] as? Int, 0)
    }

    // MARK: - 2. A failing statement

    /// The third statement fails (a UNIQUE constraint, after two that changed rows): nothing
    /// live changes, the message names statement 3 and its line, exit 3, and the units run
    /// again. A statement that fails to prepare (no such table) is told the same way.
    func testAFailingThirdStatementChangesNothingLive() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        try commitLater(box, rows: 20)
        _ = try box.takeBackup()
        let path = try writeMigration(box, "third-fails", """
        -- Three statements, the third fails on a UNIQUE constraint.
        -- expect-min-indexes: 34

        DELETE FROM metrics WHERE name = 'latency_ms';

        UPDATE tasks
           SET priority = 0;
        /* the next one fails */
        INSERT INTO state(key, value, updated_at)
          VALUES ('writer_seq', 'duplicate', 'now');
        DROP TABLE document_index;

        """)
        let live = try liveFiles(box), before = try view(box), backups = try storedBackups(box)
        let oldHash = try XCTUnwrap(live["abathur.db"])

        let run = try migrate(box, path)
        XCTAssertEqual(run.status, 3, run.stderr)
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-restore: error: \(path): statement 3 (line 9) failed: "), run.stderr)
        XCTAssertTrue(run.stderr.contains("UNIQUE constraint failed: state.key"), run.stderr)
        XCTAssertTrue(run.stderr.contains("INSERT INTO state(key, value, updated_at)"), run.stderr)
        XCTAssertTrue(run.stderr.contains("rolled back, nothing was changed"), run.stderr)
        XCTAssertFalse(run.stdout.contains("migrated "), run.stdout)
        try assertNothingLiveChanged(box, live: live, view: before, backups: backups)
        assertStoppedAndStartedAgain(box, hash: oldHash)

        let md = try stdoutValue(run, "incident record: ")
        let text = try String(contentsOfFile: md, encoding: .utf8)
        XCTAssertTrue(text.contains("line 9"), "the record names the failed statement's line:\n" + text)
        let record = try json(String(md.dropLast(3)) + ".json")
        XCTAssertEqual(record["exit_code"] as? Int, 3)
        let failed = try XCTUnwrap((record["outcome"] as? [String: Any])?["failed_statement"] as? [String: Any], "\(record)")
        XCTAssertEqual(failed["line"] as? Int, 9)

        // --json: the two statements that ran (and were rolled back) and the failed one.
        clearSystemctlLog(box)
        let structured = try migrate(box, path, ["--json"])
        XCTAssertEqual(structured.status, 3, structured.stderr)
        let outcome = try result(structured)
        let statements = try XCTUnwrap(outcome["statements"] as? [[String: Any]], "\(outcome)")
        XCTAssertEqual(statements.compactMap { $0["line"] as? Int }, [4, 6])
        XCTAssertEqual(statements.first?["changes"] as? Int, 100, "a third of the 300 metrics rows are latency_ms")
        XCTAssertEqual(statements.last?["changes"] as? Int, before.rows["tasks"])
        XCTAssertEqual((outcome["failed_statement"] as? [String: Any])?["line"] as? Int, 9, "\(outcome)")
        try assertNothingLiveChanged(box, live: live, view: before, backups: backups, "--json")
        assertStoppedAndStartedAgain(box, hash: oldHash)

        // A statement SQLite cannot prepare.
        clearSystemctlLog(box)
        let unknown = try writeMigration(box, "no-such-table", """
        -- expect-min-indexes: 34
        DELETE FROM metrics;
        DELETE FROM audit;
        INSERT INTO no_such_table VALUES (1);

        """)
        let prepare = try migrate(box, unknown)
        XCTAssertEqual(prepare.status, 3, prepare.stderr)
        XCTAssertTrue(prepare.stderr.contains("statement 3 (line 4) failed: "), prepare.stderr)
        XCTAssertTrue(prepare.stderr.contains("no such table: no_such_table"), prepare.stderr)
        try assertNothingLiveChanged(box, live: live, view: before, backups: backups, "no such table")
        assertStoppedAndStartedAgain(box, hash: oldHash)
    }

    /// A migration that makes the database bigger (a new table filled with rows, a new
    /// index), as every 12-step table rebuild does: it applies, and the new table is live.
    func testAMigrationThatGrowsTheDatabaseApplies() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        let path = try writeMigration(box, "grow", """
        -- expect-min-indexes: 35
        CREATE TABLE audit_archive(id INTEGER PRIMARY KEY, task_id INTEGER REFERENCES tasks(id), action TEXT NOT NULL, created_at TEXT NOT NULL);
        INSERT INTO audit_archive SELECT id, task_id, action, created_at FROM audit;
        CREATE INDEX idx_audit_archive_task ON audit_archive(task_id);

        """)
        let before = try view(box)
        let run = try migrate(box, path, env: ["ABATHUR_EXPECT_TABLES": Self.tablesButDocumentIndex])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(lines(run.stdout).contains { $0.hasPrefix("schema: ") && $0.contains("tables +1 (audit_archive)") }, run.stdout)
        var expected = before.rows
        expected["audit_archive"] = before.rows["audit"]
        XCTAssertEqual(try view(box).rows, expected, "audit_archive is live with every audit row; every other table as it was")
        XCTAssertEqual(systemctlCalls(box).map { String($0.prefix(6)) }, ["stop -", "start "])
    }

    // MARK: - 3. Refused before the swap

    /// Runs `migration` and expects exit 3 with `message` on stderr, nothing live changed, the
    /// units stopped and started again and a refused incident record.
    func assertRefused(_ box: Sandbox, _ name: String, _ migration: String, _ args: [String] = [], env: [String: String] = [:],
                       message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        clearSystemctlLog(box)
        let path = try writeMigration(box, name, migration)
        let live = try liveFiles(box), before = try view(box, file: file, line: line), backups = try storedBackups(box)
        let run = try migrate(box, path, args, env: env)
        XCTAssertEqual(run.status, 3, "\(name): \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stderrLines.count, 1, "\(name): one diagnostic: \(run.stderr)", file: file, line: line)
        XCTAssertTrue(run.stderr.contains(message), "\(name): stderr says '\(message)': \(run.stderr)", file: file, line: line)
        XCTAssertTrue(run.stderr.contains("nothing was changed"), "\(name): \(run.stderr)", file: file, line: line)
        try assertNothingLiveChanged(box, live: live, view: before, backups: backups, name, file: file, line: line)
        assertStoppedAndStartedAgain(box, hash: try XCTUnwrap(live["abathur.db"]), file: file, line: line)
        let record = try json(String(try stdoutValue(run, "incident record: ", file: file, line: line).dropLast(3)) + ".json")
        XCTAssertEqual(record["exit_code"] as? Int, 3, "\(name)", file: file, line: line)
        XCTAssertEqual((record["outcome"] as? [String: Any])?["result"] as? String, "refused", "\(name): \(record)", file: file, line: line)
    }

    /// Sessions deleted with foreign keys off: tasks, checkpoints and memory_entries keep
    /// rows that point at them. foreign_key_check finds them; exit 3.
    func testAForeignKeyViolationLeftBehindIsRefused() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        try commitLater(box, rows: 10)
        try assertRefused(box, "orphans", """
        -- foreign-keys: off
        DELETE FROM sessions WHERE id IN ('session-1', 'session-2');

        """, message: "fails the foreign-key check: foreign_key_check: ")
        // With foreign keys on (the default) the same DELETE fails as it runs.
        try assertRefused(box, "orphans-fk-on", """
        DELETE FROM sessions WHERE id IN ('session-1', 'session-2');

        """, message: "statement 1 (line 1) failed: FOREIGN KEY constraint failed")
    }

    /// sessions dropped after every child key was set to NULL, foreign keys off: SQLite's
    /// foreign_key_check says nothing (checked here on a copy with sqlite3), and the tool still
    /// refuses, naming the tables that declare a key to sessions.
    func testADanglingReferenceIsRefused() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        let migration = """
        -- foreign-keys: off
        -- expect-min-indexes: 31
        UPDATE tasks SET session_id = NULL;
        UPDATE checkpoints SET session_id = NULL;
        UPDATE memory_entries SET session_id = NULL;
        DROP TABLE sessions;

        """
        // The trap the issue describes: foreign_key_check alone is silent about it.
        let probe = try inspectionCopy(box)
        XCTAssertEqual(try sqlite(probe, "PRAGMA foreign_keys = OFF; BEGIN; " + migration + " COMMIT; PRAGMA foreign_key_check;"), "",
                       "foreign_key_check is silent when every child key is NULL")
        XCTAssertEqual(try sqlite(probe, "SELECT count(*) FROM sqlite_schema WHERE name = 'sessions'"), "0")

        try assertRefused(box, "dangling", migration, env: ["ABATHUR_EXPECT_TABLES": "tasks,agents"],
                          message: "declares a foreign key to sessions, which does not exist")
        let run = try migrate(box, box.root + "/migrations/dangling.sql", ["--json"], env: ["ABATHUR_EXPECT_TABLES": "tasks,agents"])
        XCTAssertEqual(run.status, 3, run.stderr)
        let audit = try XCTUnwrap(try result(run)["audit"] as? [String: Any])
        let dangling = try XCTUnwrap(audit["dangling"] as? [[String: Any]], "\(audit)")
        XCTAssertEqual(Set(dangling.compactMap { $0["table"] as? String }), ["tasks", "checkpoints", "memory_entries"], "\(dangling)")
        XCTAssertEqual(Set(dangling.compactMap { $0["parent"] as? String }), ["sessions"])
        XCTAssertEqual((audit["violations"] as? [Any])?.count, 0, "\(audit)")
    }

    /// The expected schema after the migration: the header's expect-tables, expect-absent and
    /// expect-min-indexes, --expect-tables, and the config's expect_min_indexes.
    func testAResultThatIsNotTheExpectedSchemaIsRefused() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        try assertRefused(box, "removes-expected", """
        -- expect-tables: tasks, agents, document_index
        -- expect-min-indexes: 34
        DROP TABLE document_index;

        """, message: "missing table(s) document_index")
        try assertRefused(box, "leaves-absent", """
        -- expect-absent: document_index, metrics
        -- expect-min-indexes: 26
        DROP TABLE document_index;

        """, message: "table(s) still there that the file expects gone: metrics")
        try assertRefused(box, "flag-expects", """
        -- expect-min-indexes: 34
        DROP TABLE document_index;

        """, ["--expect-tables", "tasks,document_index"], message: "missing table(s) document_index")
        try assertRefused(box, "too-few-indexes", """
        -- expect-min-indexes: 35
        DROP TABLE document_index;

        """, message: "34 indexes, expected at least 35")
        // No expect-min-indexes in the header: the config's (33 by default) holds.
        try assertRefused(box, "default-min-indexes", """
        DROP TABLE document_index;
        DROP INDEX idx_metrics_name;
        DROP INDEX idx_metrics_agent;

        """, message: "32 indexes, expected at least 33")
    }

    // MARK: - 4. A process that holds the database

    /// A python3 sqlite3 connection held open by a process that is not among the units: exit
    /// 7 naming its pid, nothing changed (no restore point taken either), the units started again.
    func testAWriterThatIsNotAmongTheUnitsRefusesTheMigration() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        try commitLater(box, rows: 10)
        let path = try writeMigration(box, "drop-document-index", Self.dropDocumentIndex)

        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", """
        import sqlite3, sys, time
        c = sqlite3.connect(sys.argv[1])
        c.execute('SELECT count(*) FROM tasks').fetchone()
        print('ready', flush=True)
        time.sleep(120)
        """, box.db]
        let said = Pipe()
        holder.standardOutput = said
        holder.standardInput = FileHandle.nullDevice
        try holder.run()
        defer {
            if holder.isRunning { holder.terminate() }
            holder.waitUntilExit()
        }
        XCTAssertEqual(said.fileHandleForReading.readLine(), "ready\n", "the holder opened the database")
        // Taken once the holder has opened the database: its own open rebuilds the -shm.
        let live = try liveFiles(box), before = try view(box), backups = try storedBackups(box)

        let run = try migrate(box, path)
        XCTAssertTrue(holder.isRunning)
        XCTAssertEqual(run.status, 7, run.stderr)
        XCTAssertTrue(run.stderr.contains("pid \(holder.processIdentifier)"), "names the holder: \(run.stderr)")
        XCTAssertTrue(run.stderr.contains("nothing was changed"), run.stderr)
        try assertNothingLiveChanged(box, live: live, view: before, backups: backups)
        XCTAssertEqual(try preMigrateBackups(box), [], "refused before the restore point")
        assertStoppedAndStartedAgain(box, hash: try XCTUnwrap(live["abathur.db"]))
        let record = try json(String(try stdoutValue(run, "incident record: ").dropLast(3)) + ".json")
        XCTAssertEqual(record["exit_code"] as? Int, 7)
    }

    // MARK: - 5. --dry-run and --drill

    /// On a scratch copy while the service runs: nothing live or in the backup directory
    /// changes, no unit is stopped, the diff and the time the units would be stopped are
    /// printed; exit 1 when the migration removes a table expect_tables lists, 0 when not,
    /// 3 when a statement fails.
    func testDryRunAndDrillChangeNothingAndPrintTheDiff() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        _ = try box.takeBackup()
        try commitLater(box, rows: 15)
        let path = try writeMigration(box, "drop-document-index", Self.dropDocumentIndex)
        let live = try liveFiles(box), before = try view(box), backupDir = try box.fingerprint(box.backups)

        for mode in ["--dry-run", "--drill"] {
            for (env, code) in [([String: String](), Int32(1)), (["ABATHUR_EXPECT_TABLES": Self.tablesButDocumentIndex], 0)] {
                let context = "\(mode) \(env)"
                let run = try migrate(box, path, [mode], env: env)
                XCTAssertEqual(run.status, code, "\(context): \(run.stderr)")
                let out = lines(run.stdout)
                XCTAssertTrue(out.contains { $0.hasPrefix("schema: ") && $0.contains("tables -1 (document_index)") }, "\(context):\n" + run.stdout)
                XCTAssertTrue(out.contains { $0.hasPrefix("line 5: ") && $0.hasSuffix("DROP TABLE document_index") }, "\(context):\n" + run.stdout)
                XCTAssertTrue(out.contains { $0.hasPrefix("units would be stopped for about ") }, "\(context):\n" + run.stdout)
                XCTAssertTrue(out.contains { $0.hasPrefix("foreign keys: foreign keys clean") }, "\(context):\n" + run.stdout)
                let name = mode.dropFirst(2)
                XCTAssertTrue(run.stdout.contains("\(name): \(path) applies to a copy of \(box.db) and passes every check; nothing live was changed"),
                              "\(context):\n" + run.stdout)
                XCTAssertEqual(out.contains("set in the config: expect_tables = \(Self.tablesButDocumentIndex)"), code == 1, "\(context):\n" + run.stdout)
                XCTAssertFalse(run.stdout.contains("incident record"), "\(context):\n" + run.stdout)

                XCTAssertEqual(systemctlCalls(box), [], "\(context): no unit stopped")
                XCTAssertEqual(try liveFiles(box), live, "\(context): live db, -wal and -shm byte-identical")
                XCTAssertEqual(try view(box), before, context)
                XCTAssertEqual(try box.fingerprint(box.backups), backupDir, "\(context): the backup directory is as it was (no restore point, no safety copy, no record)")
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.root + "/tmp"), [], "\(context): the scratch copy is gone")
            }
        }

        let failing = try writeMigration(box, "fails", """
        -- expect-min-indexes: 34
        DROP TABLE document_index;
        DROP TABLE document_index;

        """)
        let dry = try migrate(box, failing, ["--dry-run"])
        XCTAssertEqual(dry.status, 3, dry.stderr)
        XCTAssertTrue(dry.stderr.contains("statement 2 (line 3) failed: no such table: document_index"), dry.stderr)
        XCTAssertEqual(systemctlCalls(box), [])
        XCTAssertEqual(try liveFiles(box), live)
        XCTAssertEqual(try box.fingerprint(box.backups), backupDir)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.root + "/tmp"), [])
    }

    // MARK: - 6. A crash at every step

    enum State: String { case old, new }

    /// After a crash the database path holds the old database or the migrated one, never a
    /// mix: a copy of db (+ -wal) opens with exactly the old schema and rows, or exactly the
    /// migrated ones, and passes integrity_check.
    func classify(_ box: Sandbox, old: View, new: View, _ context: String, file: StaticString = #filePath, line: UInt = #line) throws -> State? {
        guard exists(box.db) else {
            XCTFail("\(context): no database at \(box.db)", file: file, line: line)
            return nil
        }
        let copy = try inspectionCopy(box, file: file, line: line)
        let seen = View(schema: try schema(copy, file: file, line: line), rows: try rowCounts(copy, file: file, line: line))
        XCTAssertEqual(try sqlite(copy, "PRAGMA integrity_check", file: file, line: line), "ok", context, file: file, line: line)
        if seen == old { return .old }
        if seen == new { return .new }
        XCTFail("\(context): neither the old database nor the migrated one: \(seen.rows)", file: file, line: line)
        return nil
    }

    /// ABATHUR_FAULT=OP:crash@N (the process SIGKILLs itself) at every open, write, fsync,
    /// rename and unlink of a migration over a database with a hot WAL: the old database or
    /// the migrated one; the pre-migrate backup, complete and holding the old database,
    /// whenever the migrated one is in place; a plain rerun ends migrated with no temp file of
    /// the killed run left.
    func testACrashAtEveryStepLeavesTheOldOrTheMigratedDatabase() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 200)
        try commitLater(box, rows: 20)
        let path = try writeMigration(box, "drop-document-index", """
        -- expect-absent: document_index
        -- expect-min-indexes: 34
        DROP TABLE IF EXISTS document_index;

        """)
        let env = ["ABATHUR_EXPECT_TABLES": Self.tablesButDocumentIndex]
        let saved = box.root + "/saved"
        try mkdir(saved)
        for name in try FileManager.default.contentsOfDirectory(atPath: box.liveDir) {
            XCTAssertEqual(try Sandbox.execute("/bin/cp", [box.liveDir + "/" + name, saved + "/" + name]).status, 0)
        }
        func reset() throws {
            for dir in [box.liveDir, box.backups] where exists(dir) { try FileManager.default.removeItem(atPath: dir) }
            try mkdir(box.liveDir)
            for name in try FileManager.default.contentsOfDirectory(atPath: saved) {
                XCTAssertEqual(try Sandbox.execute("/bin/cp", [saved + "/" + name, box.liveDir + "/" + name]).status, 0)
            }
            clearSystemctlLog(box)
        }
        let old = try view(box)

        // A clean run gives the migrated state, and counts the calls a migration makes.
        var new: View?
        let calls = try FaultTrace.count(in: box.root) { trace in
            let run = try migrate(box, path, env: env.merging(trace) { a, _ in a })
            XCTAssertEqual(run.status, 0, run.stderr)
            new = try view(box)
        }
        let migrated = try XCTUnwrap(new)
        XCTAssertNotEqual(migrated, old)
        let faults = FaultTrace.faults(calls, ops: ["rename", "fsync", "open", "write", "unlink"], what: "crash")
        XCTAssertGreaterThan(faults.count, 20, "a migration makes more calls than that: \(calls)")

        var outcomes: [State: [String]] = [:]
        for fault in faults {
            try reset()
            let run = try migrate(box, path, env: env.merging(["ABATHUR_FAULT": fault]) { a, _ in a })
            XCTAssertEqual(run.status, 9, "\(fault): expected the injected SIGKILL, got exit \(run.status): \(run.stderr)")
            guard let state = try classify(box, old: old, new: migrated, fault) else { continue }
            outcomes[state, default: []].append(fault)
            if state == .new {
                let points = try preMigrateBackups(box)
                let all = try box.backupFiles()
                XCTAssertEqual(points.count, 1, "\(fault): the migrated database is in place, so the restore point must exist: \(all)")
                if let point = points.first {
                    XCTAssertTrue(exists(box.backups + "/" + point + ".json"), "\(fault): \(point) is complete (its manifest)")
                    let inflated = box.root + "/point.db"
                    try? FileManager.default.removeItem(atPath: inflated)
                    XCTAssertEqual(try box.gunzip(point, to: inflated).status, 0)
                    XCTAssertEqual(View(schema: try schema(inflated), rows: try rowCounts(inflated)), old,
                                   "\(fault): the restore point holds the old database, the hot WAL's commits included")
                }
            }
            let again = try migrate(box, path, ["--no-services"], env: env)
            XCTAssertEqual(again.status, 0, "\(fault): rerun after the crash: \(again.stderr)")
            XCTAssertEqual(try view(box), migrated, "\(fault): the rerun ends migrated")
            XCTAssertEqual(try leftovers(box), [], "\(fault): the rerun sweeps the killed run's temp files")
        }
        print("MigrateTests: \(faults.count) injected crashes (calls \(calls)); old: \(outcomes[.old, default: []]); new: \(outcomes[.new, default: []])")
        XCTAssertFalse(outcomes[.old, default: []].isEmpty, "some crash must have left the old database: \(outcomes)")
        XCTAssertFalse(outcomes[.new, default: []].isEmpty, "some crash must have left the migrated database: \(outcomes)")
    }

    // MARK: - 7. Refused statements, the header, shipped names

    /// Transaction control and the pragmas the tool sets are refused with exit 3 naming the
    /// line, and whatever ran before them is rolled back.
    func testRefusedStatementsNameTheirLine() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        let cases: [(String, String, String)] = [
            ("begin", "-- expect-min-indexes: 30\nDROP TABLE document_index;\nBEGIN;\n", "line 3: transaction control"),
            ("commit", "-- expect-min-indexes: 30\nDELETE FROM metrics;\n\nCOMMIT;\nDROP TABLE document_index;\n", "line 4: transaction control"),
            ("savepoint", "-- expect-min-indexes: 30\nSAVEPOINT one;\nDROP TABLE document_index;\n", "line 2: transaction control"),
            ("pragma", "-- expect-min-indexes: 30\nDELETE FROM audit;\nPRAGMA foreign_keys = OFF;\nDROP TABLE document_index;\n",
             "line 3: PRAGMA foreign_keys is the tool's to set"),
            ("vacuum", "-- expect-min-indexes: 30\nDROP TABLE document_index;\nVACUUM;\n", "line 3: VACUUM is not allowed"),
        ]
        for (name, text, message) in cases {
            clearSystemctlLog(box)
            let path = try writeMigration(box, name, text)
            let live = try liveFiles(box), before = try view(box), backups = try storedBackups(box)
            let run = try migrate(box, path)
            XCTAssertEqual(run.status, 3, "\(name): \(run.stderr)")
            XCTAssertEqual(run.stderrLines.count, 1, "\(name): \(run.stderr)")
            XCTAssertTrue(run.stderr.hasPrefix("abathur-restore: error: \(path): \(message)"), "\(name): \(run.stderr)")
            try assertNothingLiveChanged(box, live: live, view: before, backups: backups, name)
            assertStoppedAndStartedAgain(box, hash: try XCTUnwrap(live["abathur.db"]))
        }
    }

    /// A misspelt header directive and an unknown shipped name are usage errors (exit 2) that
    /// touch nothing, not even the units; a known name finds the file in ABATHUR_MIGRATIONS_DIR.
    func testUnknownDirectiveAndUnknownNameAreUsageErrors() throws {
        let box = try makeBox()
        try makeNineTableDatabase(box, rows: 300)
        let live = try liveFiles(box)

        let misspelt = try writeMigration(box, "misspelt", "-- expect-tabels: tasks, agents\nDROP TABLE document_index;\n")
        let run = try migrate(box, misspelt)
        XCTAssertEqual(run.status, 2, run.stderr)
        XCTAssertTrue(run.stderr.contains("line 1: expect-tabels: unknown directive"), run.stderr)
        let badValue = try writeMigration(box, "bad-value", "-- foreign-keys: maybe\nDROP TABLE document_index;\n")
        let value = try migrate(box, badValue)
        XCTAssertEqual(value.status, 2, value.stderr)
        XCTAssertTrue(value.stderr.contains("line 1: foreign-keys: expected on or off"), value.stderr)
        XCTAssertEqual(systemctlCalls(box), [])
        XCTAssertEqual(try liveFiles(box), live)
        XCTAssertEqual(try box.backupFiles(), [])

        // Shipped names: the sandbox's migrations directory holds drop-document-index and two others.
        try FileManager.default.removeItem(atPath: misspelt)
        try FileManager.default.removeItem(atPath: badValue)
        try writeMigration(box, "drop-document-index", Self.dropDocumentIndex)
        try writeMigration(box, "milestone-x-down", "-- expect-min-indexes: 30\nDROP TABLE document_index;\n")
        let shipped = ["ABATHUR_MIGRATIONS_DIR": box.root + "/migrations"]
        let unknown = try migrate(box, "milestone-9-down", env: shipped)
        XCTAssertEqual(unknown.status, 2, unknown.stderr)
        XCTAssertEqual(unknown.stderrLines.count, 1, unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("no shipped migration 'milestone-9-down'"), unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("drop-document-index") && unknown.stderr.contains("milestone-x-down"),
                      "lists the shipped names: \(unknown.stderr)")
        XCTAssertEqual(systemctlCalls(box), [])
        XCTAssertEqual(try liveFiles(box), live)

        let found = try migrate(box, "drop-document-index", env: shipped.merging(["ABATHUR_EXPECT_TABLES": Self.tablesButDocumentIndex]) { a, _ in a })
        XCTAssertEqual(found.status, 0, found.stderr)
        XCTAssertTrue(found.stdout.contains("with \(box.root)/migrations/drop-document-index.sql"), found.stdout)
        XCTAssertNil(try view(box).rows["document_index"])
    }

    // MARK: - Shipped migrations (the lead enables these once migrations/*.sql are merged)

    /// Applies the shipped `NAME.sql` (from `directory`, by default the repository's
    /// `migrations/`, found by NAME through ABATHUR_MIGRATIONS_DIR) to a demo database with
    /// the full schema: the tables its header's `expect-absent` names are gone, every other
    /// table is there with its rows, every index and trigger of a table that stays is kept,
    /// foreign keys check clean with no reference to a missing table, and the units were
    /// stopped with the old database and started with the migrated one. Exit 1 with the new
    /// expect_tables line when it removed a configured table.
    ///
    /// The lead calls it once the files land, e.g.
    /// `func testShippedMilestone2DownApplies() throws { try assertShippedMigrationApplies(name: "milestone-2-down") }`.
    func assertShippedMigrationApplies(name: String, after prerequisites: [String] = [], directory: String = Repository.path("migrations"),
                                       file: StaticString = #filePath, line: UInt = #line) throws {
        let source = directory + "/" + name + ".sql"
        let text = try String(contentsOfFile: source, encoding: .utf8)
        var absent: [String] = []
        for raw in text.split(separator: "\n") {
            let header = raw.trimmingCharacters(in: .whitespaces)
            guard header.hasPrefix("--") else { break }
            let body = header.dropFirst(2).trimmingCharacters(in: .whitespaces)
            if body.lowercased().hasPrefix("expect-absent:") {
                absent += body.dropFirst("expect-absent:".count).split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
            }
        }
        XCTAssertFalse(absent.isEmpty, "\(name): the header names the tables it removes (expect-absent)", file: file, line: line)

        let box = try makeBox("shipped-" + name)
        try box.makeDemoDatabase(rows: 300)
        for earlier in prerequisites {
            let run = try migrate(box, earlier, env: ["ABATHUR_MIGRATIONS_DIR": directory])
            XCTAssertTrue([0, 1].contains(run.status), "\(earlier), before \(name): \(run.stderr)", file: file, line: line)
        }
        let before = try view(box, file: file, line: line)
        // What the prerequisites did is theirs: calls and restore points are counted from here.
        let callsBefore = systemctlCalls(box).count
        let pointsBefore = try preMigrateBackups(box).count
        // expect-absent may also name tables a prerequisite already removed.
        let removed = absent.filter { before.rows[$0] != nil }
        XCTAssertFalse(removed.isEmpty, "\(name): the demo database has tables it removes", file: file, line: line)
        for table in absent where prerequisites.isEmpty {
            XCTAssertNotNil(before.rows[table], "\(name): the demo database has \(table) before", file: file, line: line)
        }
        let oldCopy = try inspectionCopy(box, file: file, line: line)
        let objectsBefore = lines(try sqlite(oldCopy, "SELECT type || ' ' || name || ' ON ' || tbl_name FROM sqlite_schema WHERE type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%' ORDER BY 1", file: file, line: line))
        let oldHash = try box.sha256(box.db)

        let run = try migrate(box, name, env: ["ABATHUR_MIGRATIONS_DIR": directory])
        let removesConfigured = absent.contains { Self.tables.contains($0) }
        XCTAssertEqual(run.status, removesConfigured ? 1 : 0, "\(name): \(run.stderr)", file: file, line: line)
        if removesConfigured {
            let remaining = ["tasks", "agents", "audit", "checkpoints", "state", "metrics", "sessions", "memory_entries", "document_index"]
                .filter { !absent.contains($0) }.joined(separator: ",")
            XCTAssertTrue(lines(run.stdout).contains("set in the config: expect_tables = \(remaining)"), "\(name):\n" + run.stdout, file: file, line: line)
        }

        let copy = try inspectionCopy(box, file: file, line: line)
        let after = try rowCounts(copy, file: file, line: line)
        for table in absent {
            XCTAssertNil(after[table], "\(name): \(table) is gone", file: file, line: line)
        }
        var kept = before.rows
        for table in absent { kept[table] = nil }
        XCTAssertEqual(after, kept, "\(name): every other table is there, with its rows", file: file, line: line)
        let objectsAfter = Set(lines(try sqlite(copy, "SELECT type || ' ' || name || ' ON ' || tbl_name FROM sqlite_schema WHERE type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%'", file: file, line: line)))
        for object in objectsBefore where !absent.contains(where: { object.hasSuffix(" ON " + $0) }) {
            XCTAssertTrue(objectsAfter.contains(object), "\(name): \(object) is kept", file: file, line: line)
        }
        XCTAssertEqual(try sqlite(copy, "PRAGMA foreign_key_check", file: file, line: line), "", "\(name): foreign keys clean", file: file, line: line)
        let references = try sqlite(copy, """
            SELECT m.name || ' -> ' || f."table" FROM sqlite_schema m, pragma_foreign_key_list(m.name) f
            WHERE m.type = 'table' AND f."table" NOT IN (SELECT name FROM sqlite_schema WHERE type = 'table')
            """, file: file, line: line)
        XCTAssertEqual(references, "", "\(name): no table declares a foreign key to a table that is gone", file: file, line: line)
        XCTAssertEqual(try sqlite(copy, "PRAGMA integrity_check", file: file, line: line), "ok", file: file, line: line)
        XCTAssertEqual(try box.demo(["check", copy]).status, 0, "\(name): the demo's invariants hold", file: file, line: line)
        XCTAssertEqual(Array(systemctlCalls(box).dropFirst(callsBefore)), ["stop -- \(Self.units) \(oldHash)", "start -- \(Self.units) \(try box.sha256(box.db))"],
                       "\(name): units stopped with the old database, started with the migrated one", file: file, line: line)
        XCTAssertEqual(try preMigrateBackups(box).count, pointsBefore + 1, "\(name): the restore point", file: file, line: line)
    }

    /// The migrations the package ships, on the demo schema (abathur's stand-in): milestone 3
    /// rolled back, then milestone 2 after it.
    func testShippedMilestone3DownApplies() throws {
        try assertShippedMigrationApplies(name: "milestone-3-down")
    }

    func testShippedMilestone2DownAppliesAfterMilestone3Down() throws {
        try assertShippedMigrationApplies(name: "milestone-2-down", after: ["milestone-3-down"])
    }

    /// milestone-2-down refuses while milestone 3's tables are there, changing nothing.
    func testShippedMilestone2DownRefusesBeforeMilestone3Down() throws {
        let box = try makeBox("m2-first")
        try box.makeDemoDatabase(rows: 300)
        let hash = try box.sha256(box.db)
        let run = try migrate(box, "milestone-2-down", env: ["ABATHUR_MIGRATIONS_DIR": Repository.path("migrations")])
        XCTAssertEqual(run.status, 3, run.stderr)
        XCTAssertTrue(run.stderr.contains("run_milestone_3_down_first"), run.stderr)
        XCTAssertEqual(try box.sha256(box.db), hash)
    }
}
