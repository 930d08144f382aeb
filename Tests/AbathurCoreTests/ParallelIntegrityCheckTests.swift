@testable import AbathurCore
import Foundation
import XCTest

/// integrity_check split over several connections (`ParallelIntegrityCheck`: quick_check plus
/// integrity_check(TABLE) for each table) finds what SQLite's one `PRAGMA integrity_check`
/// finds, on real files damaged in the ways each half is there for: an index that no longer
/// matches its table (only the per-table checks look rows up in indexes) and a page that no
/// b-tree uses (only quick_check does the page accounting). The tables are small: a
/// per-table check reports at most 100 messages (SQLite's default, since its argument is the
/// table's name), so the listings are compared below that.
final class ParallelIntegrityCheckTests: XCTestCase {
    var dir = ""
    var db: String { dir + "/p.db" }

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try sqlite(db, """
        CREATE TABLE a(id INTEGER PRIMARY KEY, x TEXT, y TEXT);
        CREATE INDEX a_x ON a(x);
        CREATE INDEX a_y ON a(y);
        CREATE TABLE b(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, w TEXT UNIQUE);
        CREATE INDEX b_v ON b(v);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
        INSERT INTO a SELECT i, printf('x%06d', i), printf('y%06d', 40 - i) FROM n;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
        INSERT INTO b SELECT i, i % 97, printf('w%06d', i) FROM n;
        """)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    @discardableResult
    func sqlite(_ path: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [path, sql]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, sql)
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
    }

    /// SQLite's single pragma, and ours split over 4 threads.
    func bothChecks() throws -> (sqlite: Set<String>, split: DatabaseInspection.Structure) {
        let whole = Set(try sqlite("file:\(db)?immutable=1", "PRAGMA integrity_check(1000)").split(separator: "\n").map(String.init)
            .filter { !$0.hasPrefix("*** in database ") })
        let tables = try Connection(path: db, mode: .immutable).rows(DatabaseInspection.tablesByIndexCount).compactMap { $0[0] }
        XCTAssertEqual(tables, ["a", "b"], "the tables with the most indexes first")
        let split = try ParallelIntegrityCheck.run(.init(like: Connection(path: db, mode: .immutable, busyTimeoutMs: 1000), mmap: true),
                                                   pragma: "integrity_check", maxErrors: 1000, tables: tables, threads: 4).structure
        return (whole, split)
    }

    func testAHealthyDatabaseIsOk() throws {
        let (whole, split) = try bothChecks()
        XCTAssertEqual(whole, ["ok"])
        XCTAssertEqual(split.messages, ["ok"])
        XCTAssertNil(split.failure)
    }

    /// The index says one thing, the table another: rows "missing from index" that only a
    /// lookup of every row finds (quick_check alone says ok).
    func testAnIndexThatNoLongerMatchesItsTableIsFound() throws {
        try sqlite(db, """
        PRAGMA writable_schema = ON;
        UPDATE sqlite_schema SET sql = 'CREATE INDEX a_y ON a(x)' WHERE name = 'a_y';
        """)
        XCTAssertEqual(try sqlite("file:\(db)?immutable=1", "PRAGMA quick_check"), "ok", "quick_check cannot see this")
        let (whole, split) = try bothChecks()
        XCTAssertNotEqual(whole, ["ok"])
        XCTAssertEqual(Set(split.messages), whole)
        XCTAssertFalse(split.ok)
    }

    /// A page no b-tree and no freelist holds: only the whole-file accounting (quick_check)
    /// finds it; integrity_check(TABLE) alone says ok.
    func testAPageNothingUsesIsFound() throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: db))
        let size = try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 0, count: 4096))
        let pages = UInt32(size / 4096 + 1)
        try handle.seek(toOffset: 28)
        try handle.write(contentsOf: Data([UInt8(pages >> 24), UInt8(pages >> 16 & 0xff), UInt8(pages >> 8 & 0xff), UInt8(pages & 0xff)]))
        try handle.close()
        XCTAssertEqual(try sqlite("file:\(db)?immutable=1", "PRAGMA integrity_check(a)"), "ok", "a per-table check cannot see this")
        let (whole, split) = try bothChecks()
        XCTAssertTrue(whole.contains("Page \(pages) is never used"), "\(whole)")
        XCTAssertEqual(Set(split.messages), whole)
    }

    /// Through the inspection of a file (what a backup, a verify and a restore run): split when
    /// there is more than one core, with the same verdict and messages.
    func testTheInspectionOfAFileGivesTheSameMessages() throws {
        try sqlite(db, """
        PRAGMA writable_schema = ON;
        UPDATE sqlite_schema SET sql = 'CREATE INDEX b_v ON b(w)' WHERE name = 'b_v';
        """)
        let inspection = try DatabaseInspection.file(db, options: DatabaseInspection.Options(quick: false, maxErrors: 1000), busyTimeoutMs: 1000)
        let structure = try XCTUnwrap(inspection.contents?.get().structure)
        XCTAssertEqual(Set(structure.messages), try bothChecks().sqlite)
        XCTAssertFalse(structure.ok)
    }
}
