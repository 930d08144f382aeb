@testable import AbathurCore
import Foundation
import XCTest

/// `WALInspection.inspect` on real `-wal` files written by SQLite (the `sqlite3` CLI and
/// Python's sqlite3 module, both on the system libsqlite3), damaged the ways FACTS.md 10
/// describes. SQLite itself is the referee: the rows it sees when it opens a copy of the
/// database and the `-wal` must be exactly the committed prefix the inspection reports.
final class WALInspectionTests: WALTestCase {
    func testCleanWALWithCommittedFrames() throws {
        try makeHotWAL(rows: 12)
        let raw = try bytes(wal)
        let (pageSize, frame) = try frameSize()
        let w = try WALInspection.inspect(wal)
        XCTAssertNil(w.headerProblem)
        XCTAssertEqual(w.fileSize, Int64(raw.count))
        XCTAssertEqual(w.pageSize, pageSize)
        XCTAssertEqual(w.checkpointSequence, u32(raw, 12))
        XCTAssertEqual(w.salt1, u32(raw, 16))
        XCTAssertEqual(w.salt2, u32(raw, 20))
        XCTAssertEqual(w.framesInFile, (raw.count - 32) / frame)
        XCTAssertEqual(w.framesInFile, 12, "one frame per single-row transaction")
        XCTAssertEqual(w.trailingBytes, 0)
        XCTAssertEqual(w.validFrames, 12)
        XCTAssertEqual(w.committedFrames, 12)
        XCTAssertEqual(w.commits, 12)
        XCTAssertNil(w.firstInvalidFrame)
        XCTAssertNil(w.invalidReason)
        XCTAssertEqual(w.droppedCommits, 0)
        XCTAssertEqual(w.droppedFrames, 0)
        XCTAssertEqual(w.pagesTouched, 1, "every transaction rewrote the table's one page")
        XCTAssertEqual(w.committedDatabasePages, 2)
        XCTAssertTrue(w.hasCommittedFrames)
        XCTAssertEqual(try rowsSQLiteSees(), 12)
        XCTAssertEqual(try bytes(wal), raw, "inspection writes nothing")
    }

    /// A torn tail (the last frame cut in half) is harmless: only the half-written
    /// transaction goes, and nothing is reported as dropped.
    func testTornTailLosesOnlyTheHalfWrittenTransaction() throws {
        try makeHotWAL(rows: 10)
        let (_, frame) = try frameSize()
        let raw = try bytes(wal)
        try write(Array(raw.prefix(raw.count - frame / 2)), wal)
        let w = try WALInspection.inspect(wal)
        XCTAssertNil(w.headerProblem)
        XCTAssertEqual(w.framesInFile, 9)
        XCTAssertEqual(w.trailingBytes, Int64(frame - frame / 2))
        XCTAssertNil(w.firstInvalidFrame, "a torn tail is not an invalid frame")
        XCTAssertEqual(w.droppedCommits, 0)
        XCTAssertEqual(w.droppedFrames, 0)
        XCTAssertEqual(w.validFrames, 9)
        XCTAssertEqual(w.committedFrames, 9)
        XCTAssertEqual(w.commits, 9)
        XCTAssertEqual(try rowsSQLiteSees(), 9, "SQLite agrees: the committed prefix is 9 transactions")
    }

    /// FACTS.md 10: one bad frame in the middle silently drops every later commit.
    func testBadMiddleFrameReportsDroppedCommits() throws {
        try makeHotWAL(rows: 20)
        let (_, frame) = try frameSize()
        var raw = try bytes(wal)
        let middle = 10
        raw[32 + (middle - 1) * frame + 24 + 100] ^= 0x5A
        try write(raw, wal)
        let w = try WALInspection.inspect(wal)
        XCTAssertNil(w.headerProblem)
        XCTAssertEqual(w.framesInFile, 20)
        XCTAssertEqual(w.firstInvalidFrame, middle)
        XCTAssertTrue(w.invalidReason?.contains("checksum") == true, w.invalidReason ?? "nil")
        XCTAssertEqual(w.validFrames, middle - 1)
        XCTAssertEqual(w.committedFrames, middle - 1)
        XCTAssertEqual(w.commits, middle - 1)
        XCTAssertGreaterThan(w.droppedCommits, 0)
        XCTAssertEqual(w.droppedCommits, 20 - middle, "the commits after the bad frame")
        XCTAssertEqual(w.droppedFrames, 20 - middle)
        XCTAssertTrue(w.hasCommittedFrames)
        let seen = try rowsSQLiteSees()
        XCTAssertEqual(seen, w.commits, "SQLite stops at the bad frame, exactly where the inspection says")
        XCTAssertEqual(20 - seen - 1, w.droppedCommits, "and silently drops the later commits")
    }

    /// Real damage stays where it is: three reads agree and the finding stands. A break that
    /// moves on every read is a writer outrunning the reader (the demo's live integrity check
    /// once called that critical): it is not reported as dropped commits.
    func testOnlyABreakThatStaysPutIsConfirmedAsLoss() throws {
        try makeHotWAL(rows: 20)
        let (_, frame) = try frameSize()
        var raw = try bytes(wal)
        raw[32 + 9 * frame + 24 + 100] ^= 0x5A
        try write(raw, wal)
        let damaged = try WALInspection.inspect(wal)
        XCTAssertGreaterThan(damaged.droppedCommits, 0)
        var reads = 0
        let stable = WALInspection.confirmed(reading: { reads += 1; return damaged }, pause: {})
        XCTAssertEqual(stable.droppedCommits, damaged.droppedCommits)
        XCTAssertEqual(reads, 3, "three agreeing reads confirm it")
        // The same finding with the break one frame later on each read.
        reads = 0
        let moving = WALInspection.confirmed(reading: { () -> WALInspection in
            reads += 1
            var next = damaged
            next.firstInvalidFrame = damaged.firstInvalidFrame! + reads
            return next
        }, pause: {})
        XCTAssertEqual(reads, 10)
        XCTAssertEqual(moving.droppedCommits, 0, "never confirmed: not damage")
        XCTAssertNil(moving.lossDescription)
        XCTAssertEqual(moving.commits, damaged.commits, "the committed prefix is still reported")
        // A read that finds nothing dropped ends it at once.
        reads = 0
        let healed = WALInspection.confirmed(reading: { () -> WALInspection in
            reads += 1
            var next = damaged
            if reads == 2 { next.dropped = []; next.droppedFrames = 0 }
            return next
        }, pause: {})
        XCTAssertEqual(reads, 2)
        XCTAssertEqual(healed.droppedCommits, 0)
    }

    func testBadHeaderChecksumMeansTheWholeWALIsIgnored() throws {
        try makeHotWAL(rows: 8)
        var raw = try bytes(wal)
        raw[28] ^= 0x01
        try write(raw, wal)
        let w = try WALInspection.inspect(wal)
        XCTAssertNotNil(w.headerProblem)
        XCTAssertTrue(w.headerProblem?.contains("checksum") == true, w.headerProblem ?? "nil")
        XCTAssertFalse(w.hasCommittedFrames)
        XCTAssertEqual(w.commits, 0)
        XCTAssertEqual(w.committedFrames, 0)
        XCTAssertEqual(w.fileSize, Int64(raw.count))
        XCTAssertEqual(try rowsSQLiteSees(), 0, "SQLite ignores the whole WAL too")
    }

    func testEmptyFile() throws {
        _ = FileManager.default.createFile(atPath: wal, contents: Data())
        let w = try WALInspection.inspect(wal)
        XCTAssertNotNil(w.headerProblem)
        XCTAssertEqual(w.fileSize, 0)
        XCTAssertEqual(w.framesInFile, 0)
        XCTAssertEqual(w.validFrames, 0)
        XCTAssertEqual(w.commits, 0)
        XCTAssertEqual(w.droppedCommits, 0)
        XCTAssertNil(w.firstInvalidFrame)
        XCTAssertFalse(w.hasCommittedFrames)
    }

    func testShortFileAndBadMagic() throws {
        try write(Array(repeating: 0x37, count: 10), wal)
        let short = try WALInspection.inspect(wal)
        XCTAssertNotNil(short.headerProblem)
        XCTAssertFalse(short.hasCommittedFrames)
        try write(Array(repeating: 0x41, count: 32 + 4 * (24 + 4096)), wal)
        let garbage = try WALInspection.inspect(wal)
        XCTAssertTrue(garbage.headerProblem?.contains("magic") == true, garbage.headerProblem ?? "nil")
        XCTAssertEqual(garbage.commits, 0)
        XCTAssertFalse(garbage.hasCommittedFrames)
    }

    func testMissingFileThrows() {
        XCTAssertThrowsError(try WALInspection.inspect(dir + "/nope.db-wal"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/nope.db-wal"))
    }

    /// FACTS.md "WAL file": after a full checkpoint the next writer restarts the WAL with new
    /// salts; the older frames behind the new ones are normal, not damage, and drop nothing.
    func testOlderFramesAfterAResetAreNotDroppedCommits() throws {
        try makeHotWAL(rows: 20, checkpointThen: 3)
        let w = try WALInspection.inspect(wal)
        XCTAssertNil(w.headerProblem)
        XCTAssertEqual(w.framesInFile, 20)
        XCTAssertEqual(w.commits, 3)
        XCTAssertEqual(w.committedFrames, 3)
        XCTAssertEqual(w.firstInvalidFrame, 4, "the first frame of the previous generation ends the valid prefix")
        XCTAssertTrue(w.invalidReason?.contains("salt") == true, w.invalidReason ?? "nil")
        XCTAssertEqual(w.droppedCommits, 0, "old-generation frames are not commits SQLite drops")
        XCTAssertEqual(w.droppedFrames, 0)
        XCTAssertEqual(try rowsSQLiteSees(), 23, "20 checkpointed into the file, 3 in the WAL")
    }
}
