@testable import AbathurCore
import Foundation
import XCTest

/// `WALReader` frame by frame and `WALInspection`'s per-commit pages, on real `-wal` files,
/// with SQLite as the referee for what each frame holds: the table's root page it reports,
/// and the page image a checkpoint copies into the file.
final class WALReaderTests: WALTestCase {
    /// Every frame of the WAL, read with the reader.
    func frames(_ reader: WALReader) throws -> [WALFrame] {
        var frames: [WALFrame] = []
        while let frame = try reader.next() { frames.append(frame) }
        return frames
    }

    func testHeaderAndFramesOfACleanWAL() throws {
        try makeHotWAL(transactions: ["INSERT INTO a(v) VALUES ('x')", "INSERT INTO b(v) VALUES ('y')", "INSERT INTO a(v) VALUES ('z')"])
        let raw = try bytes(wal)
        let reader = try WALReader(wal)
        let header = try XCTUnwrap(reader.header)
        XCTAssertNil(reader.headerProblem)
        XCTAssertEqual(header.magic, u32(raw, 0))
        XCTAssertTrue(header.magic == WALHeader.magicLittleEndian || header.magic == WALHeader.magicBigEndian)
        XCTAssertEqual(header.format, 3_007_000)
        XCTAssertEqual(header.pageSize, Int(u32(raw, 8)))
        XCTAssertEqual(header.checkpointSequence, u32(raw, 12))
        XCTAssertEqual(header.salt1, u32(raw, 16))
        XCTAssertEqual(header.salt2, u32(raw, 20))
        XCTAssertTrue(header.checksumIsValid)
        let all = try frames(reader)
        try reader.close()
        XCTAssertEqual(all.count, 3, "one frame per single-page transaction")
        XCTAssertEqual(reader.framesInFile, 3)
        XCTAssertEqual(reader.trailingBytes, 0)
        let (rootA, rootB) = (try rootPage("a"), try rootPage("b"))
        XCTAssertNotEqual(rootA, rootB)
        XCTAssertEqual(all.map(\.pageNumber), [rootA, rootB, rootA])
        for (i, frame) in all.enumerated() {
            XCTAssertEqual(frame.index, i + 1)
            XCTAssertEqual(frame.offset, Int64(32 + i * header.frameSize))
            XCTAssertEqual(frame.pageNumber, u32(raw, Int(frame.offset)), "the page number is the frame header's first word")
            XCTAssertEqual(frame.commitSize, 3, "each is a commit; the database then has 3 pages")
            XCTAssertTrue(frame.isCommit)
            XCTAssertEqual(frame.salt1, header.salt1)
            XCTAssertEqual(frame.salt2, header.salt2)
            XCTAssertTrue(frame.saltsMatch)
            XCTAssertEqual(frame.storedChecksum, WALChecksum(u32(raw, Int(frame.offset) + 16), u32(raw, Int(frame.offset) + 20)))
            XCTAssertTrue(frame.checksumVerifies)
            XCTAssertEqual(frame.standing, .valid)
        }
        XCTAssertEqual(try bytes(wal), raw, "reading writes nothing")
    }

    /// The page image of a frame is what a checkpoint writes into the database at that page.
    func testPageImageIsWhatACheckpointWrites() throws {
        try makeHotWAL(transactions: ["INSERT INTO a(v) VALUES ('first')", "INSERT INTO a(v) VALUES ('second')"])
        let reader = try WALReader(wal)
        var last: (WALFrame, [UInt8])?
        while let frame = try reader.next() { last = (frame, reader.page()) }
        let (frame, page) = try XCTUnwrap(last)
        let pageSize = try XCTUnwrap(reader.header).pageSize
        XCTAssertEqual(page.count, pageSize)
        let copy = try copyWithWAL()
        XCTAssertEqual(try run("/usr/bin/sqlite3", [copy, "PRAGMA wal_checkpoint(TRUNCATE)"]).status, 0)
        let file = try bytes(copy)
        let start = Int(frame.pageNumber - 1) * pageSize
        XCTAssertEqual(Array(file[start..<start + pageSize]), page)
    }

    /// Each commit's pages: a transaction that writes both tables touches both root pages;
    /// the commits after a damaged frame keep their own pages, and the chain past the break
    /// verifies from the broken frame's stored checksum.
    func testPagesOfEachCommitAndOfTheDroppedOnes() throws {
        try makeHotWAL(transactions: ["INSERT INTO a(v) VALUES ('1'); INSERT INTO b(v) VALUES ('1')",
                                      "INSERT INTO a(v) VALUES ('2')",
                                      "INSERT INTO b(v) VALUES ('3')",
                                      "INSERT INTO b(v) VALUES ('4')",
                                      "INSERT INTO a(v) VALUES ('5'); INSERT INTO b(v) VALUES ('5')"])
        let (rootA, rootB) = (try rootPage("a"), try rootPage("b"))
        var raw = try bytes(wal)
        let frameSize = 24 + Int(u32(raw, 8))
        // Frames: 1-2 the first commit, 3 the second, 4 the third (damaged), 5, then 6-7.
        raw[32 + 3 * frameSize + 24 + 200] ^= 0x20
        try write(raw, wal)
        let reader = try WALReader(wal)
        let all = try frames(reader)
        XCTAssertEqual(all.map(\.standing), [.valid, .valid, .valid, .firstInvalid(.checksumMismatch), .pastBreak, .pastBreak, .pastBreak])
        XCTAssertEqual(all.map(\.checksumVerifies), [true, true, true, false, true, true, true],
                       "past the break the chain continues from the damaged frame's stored checksum")
        XCTAssertEqual(all.map(\.commitSize).map { $0 != 0 }, [false, true, true, true, true, false, true])

        let w = try WALInspection.inspect(wal)
        XCTAssertEqual(w.committed, [
            WALInspection.Commit(firstFrame: 1, commitFrame: 2, databasePages: 3, pages: [rootA, rootB].sorted()),
            WALInspection.Commit(firstFrame: 3, commitFrame: 3, databasePages: 3, pages: [rootA]),
        ])
        XCTAssertEqual(w.dropped, [
            WALInspection.Commit(firstFrame: 5, commitFrame: 5, databasePages: 3, pages: [rootB]),
            WALInspection.Commit(firstFrame: 6, commitFrame: 7, databasePages: 3, pages: [rootA, rootB].sorted()),
        ], "the damaged commit itself is not counted; the two intact ones after it are")
        XCTAssertEqual(w.droppedFrames, 3)
        XCTAssertEqual(w.uncommittedFrames, 0)
        XCTAssertEqual(try rowsIn("a") + rowsIn("b"), 3, "SQLite keeps only the two commits before the damage")
    }

    /// A valid prefix that ends without a commit: its frames are the uncommitted tail.
    func testUncommittedTail() throws {
        try makeHotWAL(transactions: ["INSERT INTO a(v) VALUES ('1')", "INSERT INTO b(v) VALUES ('2'); INSERT INTO a(v) VALUES ('2')"])
        var raw = try bytes(wal)
        let frameSize = 24 + Int(u32(raw, 8))
        // Cut the last commit frame off: its first frame stays, uncommitted.
        raw.removeLast(frameSize)
        try write(raw, wal)
        let w = try WALInspection.inspect(wal)
        XCTAssertEqual(w.validFrames, 2)
        XCTAssertEqual(w.committedFrames, 1)
        XCTAssertEqual(w.uncommittedFrames, 1)
        XCTAssertEqual(w.commits, 1)
        XCTAssertEqual(try rowsIn("a") + rowsIn("b"), 1)
    }

    /// A header whose checksum is wrong: SQLite ignores every frame, and the reader marks them
    /// all past the break, still verifying them as a chain from the header's stored checksum.
    func testBadHeaderChecksumPutsEveryFramePastTheBreak() throws {
        try makeHotWAL(transactions: ["INSERT INTO a(v) VALUES ('1')", "INSERT INTO a(v) VALUES ('2')"])
        var raw = try bytes(wal)
        raw[12] ^= 0x01
        try write(raw, wal)
        let reader = try WALReader(wal)
        XCTAssertEqual(reader.headerProblem, .checksumMismatch)
        XCTAssertEqual(reader.header?.checksumIsValid, false)
        let all = try frames(reader)
        XCTAssertEqual(all.map(\.standing), [.pastBreak, .pastBreak])
        XCTAssertEqual(all.map(\.checksumVerifies), [true, true], "the chain starts from the header's stored checksum, which SQLite wrote")
        let w = try WALInspection.inspect(wal)
        XCTAssertEqual(w.commits, 0)
        XCTAssertEqual(w.droppedCommits, 2, "SQLite ignores both commits")
        XCTAssertNotNil(w.lossDescription)
        XCTAssertEqual(try rowsIn("a"), 0)
    }

    /// Frames of an earlier generation behind a reset neither carry the salts nor verify.
    func testEarlierGenerationFrames() throws {
        try makeHotWAL(rows: 6, checkpointThen: 2)
        let reader = try WALReader(wal)
        let all = try frames(reader)
        XCTAssertEqual(all.map(\.saltsMatch), [true, true, false, false, false, false])
        XCTAssertEqual(all.map(\.standing), [.valid, .valid, .firstInvalid(.saltMismatch), .pastBreak, .pastBreak, .pastBreak])
        XCTAssertEqual(all.map(\.checksumVerifies), [true, true, false, false, false, false])
    }

    func rowsIn(_ table: String) throws -> Int {
        let count = try run("/usr/bin/sqlite3", [try copyWithWAL(), "SELECT count(*) FROM \(table)"])
        XCTAssertEqual(count.status, 0)
        return Int(count.stdout) ?? -1
    }
}
