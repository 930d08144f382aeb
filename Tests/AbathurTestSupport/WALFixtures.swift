import Foundation
import XCTest

/// Live-database states built with real SQLite processes: a hot WAL left by a writer that
/// died, and one with a damaged middle frame (FACTS.md 7, 10, 11).
extension Sandbox {
    /// Inserts `count` rows into `state`, one transaction each, from a process that dies
    /// without closing: the database, a hot `-wal` and its `-shm` stay.
    func makeHotWAL(inserts count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        try DyingWriter.run(db, """
        for i in range(int(sys.argv[2])):
            c.execute("INSERT INTO state(key, value, updated_at) VALUES (?, 'x', datetime('now'))", ('hot-%d' % i,))
        """, args: ["\(count)"], file: file, line: line)
        for suffix in ["-wal", "-shm"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: db + suffix), "hot \(suffix) expected", file: file, line: line)
        }
    }

    /// The WAL's page size and its number of whole frames.
    func walGeometry() throws -> (pageSize: Int, frames: Int) {
        let data = try Data(contentsOf: URL(fileURLWithPath: db + "-wal"))
        let pageSize = Int(data[8]) << 24 | Int(data[9]) << 16 | Int(data[10]) << 8 | Int(data[11])
        return (pageSize, (data.count - 32) / (24 + pageSize))
    }

    /// Flips one bit in the page data of the middle frame of a hot WAL of one-frame commits;
    /// returns that frame's number. Every commit after it is one SQLite silently drops.
    @discardableResult
    func damageMiddleWALFrame() throws -> Int {
        let (pageSize, frames) = try walGeometry()
        let middle = frames / 2 + 1
        let path = db + "-wal"
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[32 + (middle - 1) * (24 + pageSize) + 24 + 1000] ^= 0x04
        try data.write(to: URL(fileURLWithPath: path))
        return middle
    }
}
