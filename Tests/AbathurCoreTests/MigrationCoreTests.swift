@testable import AbathurCore
import Foundation
import XCTest
@testable import AbathurTestSupport

/// The pieces `abathur-restore --migrate` stands on, on real SQLite files: a script run
/// statement by statement with the failing one named by its line, the header directives, the
/// foreign-key audit that also finds references to dropped tables, and the schema diff.
final class MigrationCoreTests: WALTestCase {
    func makeSchema() throws -> Connection {
        XCTAssertEqual(try run("/usr/bin/sqlite3", [db, """
            CREATE TABLE sessions(id TEXT PRIMARY KEY);
            CREATE TABLE tasks(id INTEGER PRIMARY KEY, session_id TEXT REFERENCES sessions(id), title TEXT);
            CREATE INDEX idx_tasks_session ON tasks(session_id);
            INSERT INTO sessions VALUES ('s1'), ('s2');
            INSERT INTO tasks(session_id, title) VALUES ('s1', 'a'), ('s2', 'b'), (NULL, 'c');
            """]).status, 0)
        return try Connection(path: db, mode: .readWrite)
    }

    func testAScriptRunsStatementByStatementAndNamesTheLineThatFailed() throws {
        let connection = try makeSchema()
        let script = """
            -- expect-absent: sessions
            UPDATE tasks SET title = upper(title);

            /* a comment */ DELETE FROM tasks
              WHERE title = 'C';
            INSERT INTO nowhere VALUES (1);
            DROP TABLE sessions;
            """
        var ran: [ScriptStatement] = []
        try connection.execute("BEGIN")
        XCTAssertThrowsError(try connection.runScript(script, check: { _ in }, each: { ran.append($0) })) { error in
            let failure = error as! ScriptFailure
            XCTAssertEqual(failure.index, 3)
            XCTAssertEqual(failure.statement.line, 6)
            XCTAssertEqual(failure.statement.sql, "INSERT INTO nowhere VALUES (1);")
            XCTAssertTrue(failure.error.message.contains("no such table"), failure.error.message)
        }
        XCTAssertEqual(ran.map(\.line), [2, 4])
        XCTAssertEqual(ran.map(\.changes), [3, 1])
        try connection.execute("ROLLBACK")
        XCTAssertEqual(try connection.integer("SELECT count(*) FROM tasks WHERE title = 'a'"), 1, "rolled back")
    }

    func testHeaderDirectives() throws {
        let header = try MigrationScript.parseHeader("""
            -- Milestone 2 down: the memory system goes.
            -- foreign-keys: off
            -- expect-tables: tasks, agents
            -- expect-absent: sessions memory_entries
            -- expect-min-indexes: 20

            DROP TABLE sessions; -- expect-tables: ignored after the first statement
            """, path: "m.sql")
        XCTAssertEqual(header, MigrationScript.Header(foreignKeys: false, expectTables: ["tasks", "agents"],
                                                      expectAbsent: ["sessions", "memory_entries"], expectMinIndexes: 20))
        XCTAssertThrowsError(try MigrationScript.parseHeader("-- expect-tabels: tasks\n", path: "m.sql")) { error in
            XCTAssertTrue("\(error)".contains("m.sql: line 1: expect-tabels: unknown directive"), "\(error)")
        }
        XCTAssertThrowsError(try MigrationScript.parseHeader("-- foreign-keys: maybe\n", path: "m.sql"))
        XCTAssertEqual(try MigrationScript.parseHeader("-- Note: prose with a colon is prose\n", path: "m.sql"), MigrationScript.Header())
    }

    func testTransactionControlAndTheToolsPragmasAreRefused() {
        for sql in ["BEGIN;", "commit", "END TRANSACTION", "SAVEPOINT x", "VACUUM", "ATTACH 'x' AS y", "PRAGMA foreign_keys = OFF", "pragma journal_mode=delete",
                    "PRAGMA main.writable_schema = 1", "PRAGMA main.journal_mode = WAL"] {
            XCTAssertNotNil(MigrationScript.refusal(of: ScriptStatement(line: 1, sql: sql, changes: 0)), sql)
        }
        for sql in ["DROP TABLE sessions", "PRAGMA user_version = 3", "UPDATE t SET begin = 1"] {
            XCTAssertNil(MigrationScript.refusal(of: ScriptStatement(line: 1, sql: sql, changes: 0)), sql)
        }
    }

    /// `foreign_key_check` is silent about a reference to a dropped table while every child
    /// key is NULL; the audit is not.
    func testTheAuditFindsReferencesToADroppedTable() throws {
        let connection = try makeSchema()
        XCTAssertTrue(try ForeignKeyAudit.run(connection).isClean)
        try connection.execute("PRAGMA foreign_keys = OFF; UPDATE tasks SET session_id = NULL; DROP TABLE sessions")
        XCTAssertEqual(try connection.rows("PRAGMA foreign_key_check").count, 0, "SQLite's own check sees nothing")
        let audit = try ForeignKeyAudit.run(connection)
        XCTAssertEqual(audit.dangling, [ForeignKeyAudit.Dangling(table: "tasks", parent: "sessions")])
        XCTAssertFalse(audit.isClean)
        XCTAssertTrue(audit.summary.contains("tasks declares a foreign key to sessions"), audit.summary)
    }

    func testTheAuditFindsOrphans() throws {
        let connection = try makeSchema()
        try connection.execute("PRAGMA foreign_keys = OFF; DELETE FROM sessions WHERE id = 's2'")
        let audit = try ForeignKeyAudit.run(connection)
        XCTAssertEqual(audit.violations.map(\.table), ["tasks"])
        XCTAssertEqual(audit.violations.map(\.parent), ["sessions"])
        XCTAssertTrue(audit.dangling.isEmpty)
    }

    func testTheDiffNamesWhatWentAndTheRowsThatChanged() throws {
        let connection = try makeSchema()
        let before = try SchemaSnapshot.take(connection)
        try connection.execute("""
            PRAGMA foreign_keys = OFF;
            DROP INDEX idx_tasks_session; DELETE FROM tasks WHERE session_id IS NULL;
            CREATE TABLE tasks_new(id INTEGER PRIMARY KEY, title TEXT); INSERT INTO tasks_new SELECT id, title FROM tasks;
            DROP TABLE tasks; ALTER TABLE tasks_new RENAME TO tasks; DROP TABLE sessions;
            CREATE INDEX idx_tasks_title ON tasks(title);
            """)
        let diff = SchemaDiff(before: before, after: try SchemaSnapshot.take(connection))
        XCTAssertEqual(diff.tablesRemoved, ["sessions"])
        XCTAssertEqual(diff.tablesAdded, [])
        // SQLite's automatic index of sessions' TEXT PRIMARY KEY counts, as expect_min_indexes counts it.
        XCTAssertEqual(diff.indexesRemoved, ["idx_tasks_session", "sqlite_autoindex_sessions_1"])
        XCTAssertEqual(diff.indexesAdded, ["idx_tasks_title"])
        XCTAssertEqual(diff.rowsChanged, ["tasks": SchemaDiff.Rows(before: 3, after: 2)])
        XCTAssertEqual(diff.summary, "tables -1 (sessions); indexes +1 (idx_tasks_title); indexes -2 (idx_tasks_session, sqlite_autoindex_sessions_1); rows: tasks 3 -> 2")
    }
}
