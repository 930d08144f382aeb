@testable import AbathurCore
import Foundation
import XCTest
@testable import AbathurTestSupport

/// diskcheck's arithmetic on filesystems given as values (statvfs results injected), and its
/// readings of real SQLite files: the database's space from the newest committed page 1, the
/// reserve's allocated blocks.
final class DiskCoreTests: WALTestCase {
    /// A filesystem of `total` bytes: `used` in use, `reserved` more free for root only.
    func filesystem(total: Int64, used: Int64, reserved: Int64 = 0, inodes: Int64 = 1000, usedInodes: Int64 = 10, device: UInt64 = 1) -> Filesystem {
        Filesystem(path: "/fs\(device)", device: device, totalBytes: total, freeBytes: total - used - reserved, freeBytesForRoot: total - used,
                   totalInodes: inodes, freeInodes: inodes - usedInodes, freeInodesForRoot: inodes - usedInodes, readOnly: false)
    }

    let mib: Int64 = 1 << 20
    let gib: Int64 = 1 << 30

    func testPercentThresholdsCountAsDfDoesWithRootsReserve() {
        let thresholds = DiskThresholds(warnPercent: 80, critPercent: 90, warnFreeBytes: nil, critFreeBytes: nil)
        // 100 GiB, 5 GiB reserved for root: df's Use% is used / (used + available).
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: 75 * gib, reserved: 5 * gib)), .ok)   // 78.9%
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: 77 * gib, reserved: 5 * gib)), .warning)  // 81.1%
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: 86 * gib, reserved: 5 * gib)), .critical) // 90.5%
        // The boundary: exactly 80% is a warning.
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: 80 * gib)), .warning)
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: 80 * gib - 1)), .ok)
    }

    func testFreeThresholdsAndTheWorstWins() {
        let thresholds = DiskThresholds(warnPercent: 80, critPercent: 90, warnFreeBytes: 10 * gib, critFreeBytes: 2 * gib)
        // 50% used of a small disk, 1.5 GiB free: the percentage says ok, the free amount critical.
        let small = filesystem(total: 3 * gib, used: 3 * gib / 2)
        let findings = thresholds.evaluate(small)
        XCTAssertEqual(findings.map(\.level), [.critical])
        XCTAssertTrue(findings[0].message.contains("free"), findings[0].message)
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: 95 * gib)), .critical)
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: 50 * gib)), .ok)
        XCTAssertEqual(thresholds.level(filesystem(total: 15 * gib, used: 6 * gib)), .warning)  // 9 GiB free < 10 GiB
        // Off when nil.
        let percentOnly = DiskThresholds(warnPercent: 80, critPercent: 90, warnFreeBytes: nil, critFreeBytes: nil)
        XCTAssertEqual(percentOnly.level(small), .ok)
    }

    func testInodesAreJudgedByThePercentages() {
        let thresholds = DiskThresholds(warnPercent: 80, critPercent: 90, warnFreeBytes: nil, critFreeBytes: nil)
        XCTAssertEqual(thresholds.evaluate(filesystem(total: 100 * gib, used: gib, inodes: 1000, usedInodes: 850)).map(\.resource), ["inodes"])
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: gib, inodes: 1000, usedInodes: 850)), .warning)
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: gib, inodes: 1000, usedInodes: 950)), .critical)
        // A filesystem that does not count inodes (btrfs reports 0) is not judged by them.
        XCTAssertNil(filesystem(total: 100 * gib, used: gib, inodes: 0, usedInodes: 0).inodesUsedPercent)
        XCTAssertEqual(thresholds.level(filesystem(total: 100 * gib, used: gib, inodes: 0, usedInodes: 0)), .ok)
    }

    func testTargetShortfallIsWhatMustBeFreed() throws {
        let target = try XCTUnwrap(DiskTarget.parse("80%"))
        let fs = filesystem(total: 100 * gib, used: 90 * gib)
        let short = target.shortfall(of: fs)
        // Freeing exactly the shortfall meets the target; a byte less does not.
        var after = fs
        after.freeBytes += short; after.freeBytesForRoot += short
        XCTAssertTrue(target.isMet(by: after))
        after.freeBytes -= 1; after.freeBytesForRoot -= 1
        XCTAssertFalse(target.isMet(by: after))
        XCTAssertEqual(DiskTarget.parse("5GiB")?.shortfall(of: filesystem(total: 10 * gib, used: 7 * gib)), 2 * gib)
        XCTAssertEqual(DiskTarget.parse("5GiB")?.shortfall(of: filesystem(total: 10 * gib, used: 4 * gib)), 0)
        XCTAssertNil(DiskTarget.parse("lots"))
        XCTAssertNil(DiskTarget.parse("120%"))
    }

    func manifest(_ name: String, at time: Int64, bytes: Int64) throws -> Manifest {
        let json = """
        {"format":1,"name":"\(name)","kind":"scheduled","label":"","created":"\(Clock.iso8601(time))","createdUnix":\(time),
         "source":"/x","toolVersion":"t","sqliteVersion":"3","compressionLevel":6,"gz":{"sha256":"00","bytes":1},
         "database":{"sha256":"00","bytes":\(bytes),"pageSize":4096,"pageCount":1,"freelistCount":0,"userVersion":0,"applicationId":0},
         "schema":{"sha256":"00","tables":[],"indexes":[],"sql":[]},"rowCounts":{},"checks":[],"verified":true,"durationsMs":{}}
        """
        return try JSONDecoder().decode(Manifest.self, from: Data(json.utf8))
    }

    func testGrowthIsTheSlopeOverTheLastThirtyDays() throws {
        let day: Int64 = 86400
        let now: Int64 = 1_800_000_000
        // 10 MiB a day for ten days, and one backup from 40 days ago that must not count.
        var manifests = try (0..<10).map { i in try manifest("b\(i)", at: now - (9 - Int64(i)) * day, bytes: 100 * mib + Int64(i) * 10 * mib) }
        manifests.append(try manifest("old", at: now - 40 * day, bytes: 1))
        let growth = Growth.estimate(manifests.shuffled(), now: Double(now), freeBytes: 500 * mib)
        XCTAssertEqual(growth.points.count, 10)
        XCTAssertEqual(growth.points.first?.backup, "b0")
        XCTAssertEqual(try XCTUnwrap(growth.bytesPerDay), Double(10 * mib), accuracy: 1)
        XCTAssertEqual(try XCTUnwrap(growth.daysUntilFull), 50, accuracy: 0.001)
        // Shrinking: no date of fullness.
        let shrinking = try (0..<3).map { i in try manifest("s\(i)", at: now - (2 - Int64(i)) * day, bytes: 100 * mib - Int64(i) * mib) }
        XCTAssertNil(Growth.estimate(shrinking, now: Double(now), freeBytes: gib).daysUntilFull)
        // One backup, or two a minute apart: not enough history.
        XCTAssertNil(Growth.estimate([try manifest("a", at: now, bytes: 1)], now: Double(now), freeBytes: gib).bytesPerDay)
        XCTAssertNil(Growth.estimate([try manifest("a", at: now - 60, bytes: 1), try manifest("b", at: now, bytes: 2)], now: Double(now), freeBytes: gib).bytesPerDay)
    }

    /// In WAL mode the main file's page 1 is stale: the freelist and page count come from the
    /// newest page 1 the WAL commits, as SQLite itself sees them.
    func testDatabaseSpaceReadsTheNewestCommittedPageOne() throws {
        XCTAssertEqual(try run("/usr/bin/sqlite3", [db, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) SELECT hex(randomblob(500)) FROM generate_series(1, 2000)"]).status, 0)
        try DyingWriter.run(db, "c.execute('DELETE FROM t WHERE id > 500')")
        let space = try DatabaseSpace.read(db)
        XCTAssertTrue(space.headerSource.hasPrefix("wal frame"), space.headerSource)
        let copy = try copyWithWAL()
        let seen = try run("/usr/bin/sqlite3", [copy, "PRAGMA freelist_count; PRAGMA page_count; PRAGMA page_size"]).stdout.split(separator: "\n").compactMap { Int64($0) }
        XCTAssertEqual(seen, [space.freelistPages, space.pageCount, Int64(space.pageSize)])
        XCTAssertGreaterThan(space.freelistPages, 100)
        // The main file alone still says no page is free.
        XCTAssertEqual(try DatabaseHeader.read(db).header.freelistCount, 0)
        XCTAssertEqual(space.walBytes, try FileStatus.of(wal)?.size)
    }

    func testReserveIsAllocatedPublishedAndReleased() throws {
        let database = dir + "/r.db"
        let path = Reserve.path(forDatabase: database)
        XCTAssertEqual(path, dir + "/.r.db.abathur-reserve")
        try Reserve.create(database: database, bytes: 4 * mib)
        let reserve = try Reserve.look(database: database, configured: 4 * mib)
        XCTAssertTrue(reserve.verified)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(reserve.allocatedBytes), 4 * mib, "allocated, not sparse")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(SafeFiles.tempPrefix) }, [])
        // A sparse file of the right length is not a reserve.
        XCTAssertEqual(try Reserve.release(database: database), reserve.allocatedBytes)
        XCTAssertEqual(truncate(path: path, size: 4 * mib), 0)
        XCTAssertFalse(try Reserve.look(database: database, configured: 4 * mib).verified)
        // A symlink in its place is refused, never followed or removed.
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: dir + "/elsewhere")
        XCTAssertThrowsError(try Reserve.release(database: database))
        XCTAssertNotNil(try FileStatus.of(path))
    }

    func truncate(path: String, size: Int64) -> Int32 {
        FileManager.default.createFile(atPath: path, contents: nil)
        return Glibc.truncate(path, off_t(size))
    }

    /// The floor-only policy of a full disk ignores retention_days, keeps the floor, and spares
    /// manual backups unless asked.
    func testEmergencyRetentionKeepsOnlyTheFloor() {
        let rule = RetentionPolicy.emergency(keepMinVerified: 2, includeManual: false).rule
        XCTAssertNil(rule.maxAgeSeconds)
        let items = [5, 4, 3, 2, 1]
        let decisions = rule.plan(items, now: 10, exemption: { $0 == 3 ? "manual" : nil }, created: { Int64($0) },
                                  countsTowardFloor: { _ in true }, removal: { _ in nil })
        XCTAssertEqual(decisions.map(\.keep), [true, true, true, false, false])
        XCTAssertEqual(decisions.last?.rule, "beyond the floor")
    }
}
