import AbathurCore
import Foundation
import XCTest

/// The retention rule shared by backups and by what restores leave (issue 10, point 11),
/// decided in-process on real directories.
final class DatedRetentionTests: XCTestCase {
    let day: Int64 = 86400

    struct Item {
        var name: String
        var age: Int64
        var counts: Bool
    }

    func testTheFloorThenTheAgeThenTheRest() {
        let rule = DatedRetention(keepNewest: 2, maxAgeSeconds: 10 * day, newestRule: "newest", age: "10 days")
        let day = self.day
        let now = Double(100 * day)
        // In the order given (newest first): ages 50, 40, 5, 30 and 20 days; the second does not
        // count toward the floor, the last is exempt.
        let items: [Item] = [Item(name: "a", age: 50, counts: true), Item(name: "b", age: 40, counts: false),
                             Item(name: "c", age: 5, counts: true), Item(name: "d", age: 30, counts: true), Item(name: "e", age: 20, counts: true)]
        let decisions: [DatedRetention.Decision<Item>] = rule.plan(
            items, now: now, exemption: { (item: Item) -> String? in item.name == "e" ? "exempt" : nil },
            created: { (item: Item) -> Int64 in 100 * day - item.age * day }, countsTowardFloor: { (item: Item) -> Bool in item.counts },
            removal: { (_: Item) -> String? in nil })
        XCTAssertEqual(decisions.map { $0.item.name }, ["a", "b", "c", "d", "e"])
        XCTAssertEqual(decisions.map { $0.keep }, [true, false, true, false, true])
        XCTAssertEqual(decisions.map { $0.rule }, ["newest", "older than 10 days", "newest", "older than 10 days", "exempt"])
    }

    func testAnItemExactlyAtTheLimitStays() {
        let rule = DatedRetention(keepNewest: 0, maxAgeSeconds: 10 * day, newestRule: "newest", age: "10 days")
        let times: [Int64] = [90 * day, 90 * day - 1]
        let decisions: [DatedRetention.Decision<Int64>] = rule.plan(
            times, now: Double(100 * day), exemption: { (_: Int64) -> String? in nil }, created: { (time: Int64) -> Int64 in time },
            countsTowardFloor: { (_: Int64) -> Bool in true }, removal: { (_: Int64) -> String? in nil })
        XCTAssertEqual(decisions.map { $0.keep }, [true, false])
        XCTAssertEqual(decisions.map { $0.rule }, ["within 10 days", "older than 10 days"])
    }
}

final class SafetyRetentionTests: XCTestCase {
    var root = ""
    var places: SafetyRetention.Places!
    /// 2026-11-27 00:00:00 UTC.
    let now = Double(Clock.epoch(year: 2026, month: 11, day: 27, hour: 0, minute: 0, second: 0))

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "safety-retention-\(UUID().uuidString)"
        places = SafetyRetention.Places(safetyRoots: [root + "/backups/safety"], databaseDirectory: root + "/live",
                                        incidentDirectory: root + "/backups/incidents")
        for dir in places.safetyRoots + [places.databaseDirectory, places.incidentDirectory] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func file(_ path: String, bytes: Int = 10) throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: bytes)), path)
    }

    /// `days` days before `now`, as `Clock.fileStamp` names it.
    func stamp(daysAgo days: Int) -> String {
        Clock.fileStamp(Int64(now) - Int64(days) * 86400)
    }

    func safetyCopy(daysAgo days: Int, tag: String = "restore") throws -> String {
        let dir = places.safetyRoots[0] + "/\(stamp(daysAgo: days))-\(tag)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        try file(dir + "/abathur.db", bytes: 100)
        try file(dir + "/abathur.db-wal", bytes: 20)
        return dir
    }

    func aside(daysAgo days: Int) throws -> String {
        let dir = places.databaseDirectory + "/.abathur-aside-\(stamp(daysAgo: days))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        try file(dir + "/abathur.db-shm", bytes: 5)
        return dir
    }

    func incident(daysAgo days: Int, kind: String = "restore") throws -> String {
        let base = places.incidentDirectory + "/\(stamp(daysAgo: days))-\(kind)"
        try file(base + ".json", bytes: 3)
        try file(base + ".md", bytes: 4)
        return base
    }

    func removed(_ retention: SafetyRetention) throws -> Set<String> {
        Set(retention.plan(try SafetyRetention.scan(places), now: now).filter { !$0.keep }.map { $0.item.path })
    }

    func testEachKindKeepsItsNewestThenWhatIsYoungEnough() throws {
        let copies = try [40, 35, 31, 20, 1].map { try safetyCopy(daysAgo: $0) }
        let asides = try [60, 50, 45, 2].map { try aside(daysAgo: $0) }
        let incidents = try [90, 80, 70, 3].map { try incident(daysAgo: $0) }
        let retention = SafetyRetention(keep: 2, maxAgeSeconds: 30 * 86400)
        // Newest two of each kind, then younger than 30 days.
        XCTAssertEqual(try removed(retention), Set([copies[0], copies[1], copies[2], asides[0], asides[1], incidents[0], incidents[1]]))

        let gone = try retention.prune(places, now: now)
        XCTAssertEqual(Set(gone), try Set([copies[0], copies[1], copies[2], asides[0], asides[1], incidents[0], incidents[1]]))
        for path in gone { XCTAssertFalse(FileManager.default.fileExists(atPath: path), path) }
        for base in incidents[..<2] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: base + ".json"))
            XCTAssertFalse(FileManager.default.fileExists(atPath: base + ".md"))
        }
        for path in copies[3...] + asides[2...] { XCTAssertTrue(FileManager.default.fileExists(atPath: path), path) }
        for base in incidents[2...] { XCTAssertTrue(FileManager.default.fileExists(atPath: base + ".md"), base) }
        XCTAssertEqual(try SafetyRetention.usage(places)[.safetyCopy], SafetyRetention.Usage(count: 2, bytes: 240))
        XCTAssertEqual(try SafetyRetention.usage(places)[.incidentRecord], SafetyRetention.Usage(count: 2, bytes: 14))
    }

    func testTheNewestSafetyCopyAlwaysStays() throws {
        let copies = try [50, 40].map { try safetyCopy(daysAgo: $0) }
        let asides = try [50, 40].map { try aside(daysAgo: $0) }
        let incidents = try [50, 40].map { try incident(daysAgo: $0) }
        let retention = SafetyRetention(keep: 0, maxAgeSeconds: 86400)
        XCTAssertEqual(try removed(retention), Set([copies[0]] + asides + incidents))
    }

    func testTheSecondCopyOfTheSameSecondIsTheNewer() throws {
        let first = try safetyCopy(daysAgo: 40)
        let second = try safetyCopy(daysAgo: 40, tag: "restore_2")
        let retention = SafetyRetention(keep: 1, maxAgeSeconds: 86400)
        XCTAssertEqual(try removed(retention), [first], "the _2 one is the newer: \(second)")
    }

    func testWhatIsNotOursIsNeitherRemovedNorCounted() throws {
        let fm = FileManager.default
        let safety = places.safetyRoots[0]
        let old = stamp(daysAgo: 400)
        // A symlink with a safety copy's name, a copy that holds a directory, a copy that holds
        // a symlink, names that are not ours, a FIFO as an incident record.
        let target = root + "/elsewhere"
        try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
        try file(target + "/keep.txt")
        try fm.createSymbolicLink(atPath: safety + "/\(old)-restore", withDestinationPath: target)
        try fm.createDirectory(atPath: safety + "/\(old)-reinit/sub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: safety + "/\(old)-drill", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: safety + "/\(old)-drill/abathur.db", withDestinationPath: target + "/keep.txt")
        for name in ["\(old)-Restore", "\(old)", "notes-\(old)-restore", "2026-13-01_00-00-00-restore", "\(old)-restore_x"] {
            try fm.createDirectory(atPath: safety + "/" + name, withIntermediateDirectories: true)
        }
        try fm.createDirectory(atPath: places.databaseDirectory + "/.abathur-aside-x", withIntermediateDirectories: true)
        try file(places.incidentDirectory + "/\(old)-restore.txt")
        XCTAssertEqual(mkfifo(places.incidentDirectory + "/\(old)-reinit.json", 0o600), 0)
        let newest = try safetyCopy(daysAgo: 1)

        let retention = SafetyRetention(keep: 0, maxAgeSeconds: 86400)
        XCTAssertEqual(try SafetyRetention.scan(places).joined().map { $0.path }, [newest])
        XCTAssertEqual(try retention.prune(places, now: now), [])
        XCTAssertTrue(fm.fileExists(atPath: target + "/keep.txt"))
        XCTAssertTrue(fm.fileExists(atPath: safety + "/\(old)-reinit/sub"))
        XCTAssertTrue(fm.fileExists(atPath: newest))
    }

    /// The decision is made on a scan; a copy that gained a file since is left whole.
    func testACopyThatChangedSinceTheScanIsLeft() throws {
        let old = try safetyCopy(daysAgo: 40)
        _ = try safetyCopy(daysAgo: 1)
        let retention = SafetyRetention(keep: 1, maxAgeSeconds: 86400)
        let decisions = retention.plan(try SafetyRetention.scan(places), now: now)
        try file(old + "/abathur.db-journal")
        XCTAssertEqual(try retention.apply(decisions), [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: old + "/abathur.db"))
    }
}
