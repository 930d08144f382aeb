import AbathurCore
import Foundation
import XCTest
@testable import AbathurTestSupport

/// Real `-wal` files for the WAL tests, written by SQLite (the `sqlite3` CLI and Python's
/// sqlite3 module, both on the system libsqlite3) from processes that die without closing, and
/// SQLite itself as the referee. A base class with no tests of its own.
class WALTestCase: XCTestCase {
    var dir = ""
    var db: String { dir + "/w.db" }
    var wal: String { db + "-wal" }

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "wal-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    @discardableResult
    func run(_ path: String, _ args: [String]) throws -> (status: Int32, stdout: String) {
        let run = try Sandbox.execute(path, args)
        return (run.status, run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// A WAL database with one table; then a process commits `rows` single-row transactions
    /// (one frame each), optionally runs a full checkpoint and commits `after` more (which
    /// restarts the WAL with new salts), and dies without closing: db, `-wal` and `-shm` stay.
    func makeHotWAL(rows: Int, checkpointThen after: Int = 0) throws {
        let create = try run("/usr/bin/sqlite3", [db, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"])
        XCTAssertEqual(create.status, 0)
        try DyingWriter.run(db, """
        for i in range(int(sys.argv[2])): c.execute('INSERT INTO t(v) VALUES (?)', ('row %d' % i,))
        if int(sys.argv[3]) > 0:
            c.execute('PRAGMA wal_checkpoint').fetchall()
            for i in range(int(sys.argv[3])): c.execute('INSERT INTO t(v) VALUES (?)', ('after %d' % i,))
        """, args: ["\(rows)", "\(after)"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: wal), "the writer died without closing: the -wal stays")
    }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }

    /// The page size from the WAL header, and the size of one frame.
    func frameSize() throws -> (pageSize: Int, frame: Int) {
        let pageSize = Int(u32(try bytes(wal), 8))
        return (pageSize, 24 + pageSize)
    }

    /// What SQLite sees: copy the database and its `-wal` (no `-shm`, so SQLite recovers the
    /// WAL from the file alone) and count the rows in the copy.
    func rowsSQLiteSees() throws -> Int {
        let count = try run("/usr/bin/sqlite3", [try copyWithWAL(), "SELECT count(*) FROM t"])
        XCTAssertEqual(count.status, 0)
        return Int(count.stdout) ?? -1
    }

    /// A WAL database with tables `a` and `b`; then one process runs each of `transactions`
    /// (SQL run as one transaction each) without checkpointing, and dies without closing.
    func makeHotWAL(transactions: [String]) throws {
        let create = try run("/usr/bin/sqlite3", [db, "PRAGMA journal_mode=WAL; CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT)"])
        XCTAssertEqual(create.status, 0)
        try DyingWriter.run(db, "for sql in sys.argv[2:]: c.executescript('BEGIN; ' + sql + '; COMMIT;')", args: transactions)
        XCTAssertTrue(FileManager.default.fileExists(atPath: wal), "the writer died without closing: the -wal stays")
    }

    /// A copy of the database and its `-wal` in a new directory (no `-shm`, so SQLite recovers
    /// the WAL from the file alone).
    func copyWithWAL() throws -> String {
        let copyDir = dir + "/copy-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: copyDir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: db, toPath: copyDir + "/w.db")
        try FileManager.default.copyItem(atPath: wal, toPath: copyDir + "/w.db-wal")
        return copyDir + "/w.db"
    }

    /// A table's root page, as SQLite reports it on a copy (the database itself is not opened).
    func rootPage(_ table: String) throws -> UInt32 {
        let query = try run("/usr/bin/sqlite3", [try copyWithWAL(), "SELECT rootpage FROM sqlite_master WHERE name = '\(table)'"])
        XCTAssertEqual(query.status, 0)
        return UInt32(query.stdout) ?? 0
    }
}
