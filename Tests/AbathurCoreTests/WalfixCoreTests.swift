import AbathurCore
import Foundation
import XCTest
@testable import AbathurTestSupport

/// The pieces walfix stands on, against real files and real processes: the bridge WAL that
/// SQLite must replay, the kernel's lock table, the `-shm` as SQLite writes it, and sizes.
final class WalfixCoreTests: WALTestCase {
    /// What SQLite reads at `path` (with its `-wal`, if any), on a copy: every row of t.
    func contents(_ path: String) throws -> String {
        let copy = dir + "/read-\(UUID().uuidString.prefix(6)).db"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        if FileManager.default.fileExists(atPath: path + "-wal") { try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal") }
        let read = try run("/usr/bin/sqlite3", [copy, "PRAGMA integrity_check; SELECT group_concat(id || ':' || v, ',') FROM t"])
        XCTAssertEqual(read.status, 0)
        return read.stdout
    }

    /// Two settled files of one database: `old`, then `new` after more commits, a rewrite of
    /// early rows and a shrink (DELETE + VACUUM), so the bridge has changed, new and cut pages.
    func makeOldAndNew() throws -> (old: String, new: String) {
        let old = dir + "/old.db", new = dir + "/new.db"
        XCTAssertEqual(try run("/usr/bin/sqlite3", [old, """
            PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO t(v) SELECT printf('old %d %0200d', i, i) FROM n;
            """]).status, 0)
        try FileManager.default.copyItem(atPath: old, toPath: new)
        XCTAssertEqual(try run("/usr/bin/sqlite3", [new, """
            UPDATE t SET v = 'new ' || id WHERE id % 7 = 0; DELETE FROM t WHERE id > 2000; VACUUM;
            """]).status, 0)
        return (old, new)
    }

    func testTheBridgeTurnsTheOldFileIntoTheNewAndTheNewIntoItself() throws {
        let (old, new) = try makeOldAndNew()
        let expected = try contents(new)
        XCTAssertNotEqual(try contents(old), expected, "the two files must differ for the test to mean anything")
        let bridge = dir + "/bridge"
        let frames = try BridgeWAL.write(from: old, to: new, as: bridge)
        XCTAssertGreaterThan(frames, 10)

        for base in [old, new] {
            let trial = dir + "/trial-\(Paths.basename(base))"
            try FileManager.default.copyItem(atPath: base, toPath: trial)
            try FileManager.default.copyItem(atPath: bridge, toPath: trial + "-wal")
            // SQLite's own recovery accepts every frame: the whole bridge is one committed transaction.
            let inspection = try WALInspection.inspect(trial + "-wal")
            XCTAssertNil(inspection.headerProblem)
            XCTAssertEqual(inspection.committedFrames, frames)
            XCTAssertEqual(inspection.commits, 1)
            XCTAssertEqual(try contents(trial), expected, "\(Paths.basename(base)) + bridge reads as the new file")
            // Checkpointed, it is the new file page for page.
            XCTAssertEqual(try run("/usr/bin/sqlite3", [trial, "PRAGMA wal_checkpoint(TRUNCATE)"]).status, 0)
            XCTAssertEqual(try bytes(trial), try bytes(new), "\(Paths.basename(base)) + bridge, checkpointed, is the new file byte for byte")
        }
    }

    func testTheLockTableNamesAProcessAndTheSlotsItHolds() throws {
        try makeHotWAL(rows: 5)
        // A real reader in another process: an open read transaction holds a read mark.
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        reader.arguments = ["-c", """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN'); c.execute('SELECT count(*) FROM t').fetchall()
            print('ready', flush=True); sys.stdin.read()
            """, db]
        let input = Pipe(), output = Pipe()
        reader.standardInput = input
        reader.standardOutput = output
        try reader.run()
        defer { try? input.fileHandleForWriting.close(); reader.waitUntilExit() }
        // Its line says the transaction is open.
        XCTAssertEqual(output.fileHandleForReading.readLine(), "ready\n")

        let pid = reader.processIdentifier
        let shmLocks = LockTable.locks(on: shm).filter { $0.pid == pid }
        XCTAssertTrue(shmLocks.contains { $0.covers(128) && !$0.exclusive }, "the connection's DMS byte: \(shmLocks)")
        XCTAssertTrue(shmLocks.contains { (123...127).contains($0.start) && !$0.exclusive }, "a read mark: \(shmLocks)")
        XCTAssertTrue(LockTable.locks(on: db).contains { $0.pid == pid && $0.covers(0x4000_0002) }, "the database's shared lock")

        let held = WALDiagnosis.heldLocks(DatabaseFiles(db), index: try WALIndexFile.read(shm))
        let mark = held.first { $0.pid == pid && $0.slot.hasPrefix("read mark") }
        XCTAssertNotNil(mark, "\(held)")
        XCTAssertEqual(mark?.command, "python3")
        XCTAssertTrue(held.allSatisfy { $0.pid != getpid() }, "this process is never its own blocker")
    }

    var shm: String { db + "-shm" }

    func testTheSharedMemoryHeaderAsSQLiteWroteIt() throws {
        try makeHotWAL(rows: 12)
        let index = try XCTUnwrap(try WALIndexFile.read(shm))
        let wal = try WALInspection.inspect(self.wal)
        let header = try XCTUnwrap(try WALReader(self.wal).header)
        XCTAssertTrue(index.copiesAgree)
        XCTAssertTrue(index.initialised)
        XCTAssertEqual(Int(index.mxFrame), wal.committedFrames)
        XCTAssertEqual(index.pageSize, wal.pageSize)
        XCTAssertTrue(index.describes(header), "the same salts")
        XCTAssertEqual(index.readMarks.count, 5)

        // A -shm from another WAL generation is told apart by its salts.
        try makeOtherGeneration()
        let other = try XCTUnwrap(try WALReader(self.wal).header)
        XCTAssertFalse(index.describes(other))
    }

    /// The WAL restarted (new salts) by a checkpoint and more commits.
    func makeOtherGeneration() throws {
        try DyingWriter.run(db, """
        c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()
        c.execute("INSERT INTO t(v) VALUES ('later')")
        """)
    }

    /// Damage in a frame's stored checksum alone breaks SQLite's chain there just as damage in
    /// its page does; the commits after it are still found, seeded from the checksum computed
    /// over the frame.
    func testCommitsAfterADamagedStoredChecksumAreFound() throws {
        try makeHotWAL(rows: 20)
        let (_, frame) = try frameSize()
        var b = try bytes(wal)
        let middle = 11
        b[32 + (middle - 1) * frame + 17] ^= 0x10  // checksum-1, in the frame header
        try write(b, wal)
        let inspection = try WALInspection.inspect(wal)
        XCTAssertEqual(inspection.firstInvalidFrame, middle)
        XCTAssertEqual(inspection.invalidBreak, .checksumMismatch)
        XCTAssertEqual(try rowsSQLiteSees(), 10, "SQLite keeps the 10 one-frame commits before it")
        XCTAssertEqual(inspection.committedFrames, 10)
        XCTAssertEqual(inspection.droppedCommits, 9, "the 9 intact commits after the damaged one")
    }

    func testSizesAsOperatorsWriteThem() {
        XCTAssertEqual(Bytes.parse("1048576"), 1_048_576)
        XCTAssertEqual(Bytes.parse("512KiB"), 512 * 1024)
        XCTAssertEqual(Bytes.parse("512MiB"), 512 << 20)
        XCTAssertEqual(Bytes.parse("2 GiB"), 2 << 30)
        XCTAssertEqual(Bytes.parse("1.5G"), 3 << 29)
        XCTAssertEqual(Bytes.parse("100mb"), 100 << 20)
        XCTAssertEqual(Bytes.parse("1T"), 1 << 40)
        for bad in ["", "MiB", "-1GiB", "12 parsecs", "1e3", "0x10", "1..2G"] { XCTAssertNil(Bytes.parse(bad), bad) }
    }
}
