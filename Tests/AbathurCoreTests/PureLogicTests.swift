@testable import AbathurCore
import Foundation
import XCTest

/// Parsing and naming logic, tested in-process: no binary is spawned for what is pure logic.
final class MomentParsingTests: XCTestCase {
    func testTheFormsOfBeforeAreUTC() {
        let expected = Clock.epoch(year: 2026, month: 11, day: 27, hour: 13, minute: 0, second: 0)
        XCTAssertEqual(Clock.parseMoment("2026-11-27T13:00:00Z"), expected)
        XCTAssertEqual(Clock.parseMoment("2026-11-27 13:00:00"), expected)
        XCTAssertEqual(Clock.parseMoment("2026-11-27"), expected - 13 * 3600)
        XCTAssertEqual(Clock.parseMoment("@\(expected)"), expected)
        XCTAssertEqual(Clock.iso8601(expected), "2026-11-27T13:00:00Z")
        XCTAssertEqual(Clock.parseMoment("1970-01-01"), 0)
    }

    func testImpossibleDatesAndOverflowsAreRejected() {
        for text in ["2026-02-29", "2026-02-31", "2026-13-01", "2026-00-10", "0999-01-01", "1000000000000-01-01",
                     "2026-11-27T24:00:00Z", "2026-11-27T13:60:00Z", "2026-11-27T13", "yesterday", "", "@", "@soon",
                     "@99999999999999999999"] {
            XCTAssertNil(Clock.parseMoment(text), text)
        }
        XCTAssertNotNil(Clock.parseMoment("2024-02-29"), "a leap day")
        XCTAssertNil(Clock.parseMoment("2100-02-29"), "2100 is not a leap year")
        XCTAssertNotNil(Clock.parseMoment("2000-02-29"), "2000 is")
    }

    func testDurationsAreFiniteAndBounded() {
        XCTAssertEqual(Duration.parse("1.5m"), 90)
        XCTAssertEqual(Duration.parse(" 2w "), 1_209_600)
        for text in ["inf", "1e300", "nan", "", "d", "3x", "-1s"] {
            XCTAssertNil(Duration.parse(text), text)
        }
    }
}

final class HealthURLTests: XCTestCase {
    func testHostPortAndPath() throws {
        let plain = try XCTUnwrap(HTTPURL("http://localhost:8080/health"))
        XCTAssertEqual([plain.host, String(plain.port), plain.path], ["localhost", "8080", "/health"])
        let bare = try XCTUnwrap(HTTPURL("HTTP://api.internal"))
        XCTAssertEqual([bare.host, String(bare.port), bare.path], ["api.internal", "80", "/"])
        let v6 = try XCTUnwrap(HTTPURL("http://[::1]:9000/ready?x=1#frag"))
        XCTAssertEqual([v6.host, String(v6.port), v6.path], ["::1", "9000", "/ready?x=1"])
    }

    func testWhatTheClientCannotSpeakIsRefused() {
        for text in ["https://localhost/health", "localhost:8080", "http://", "http://:80/", "http://host:99999/",
                     "http://host:port/", "http://user@host/", "http://[::1]x/", "ftp://host/"] {
            XCTAssertNil(HTTPURL(text), text)
        }
    }
}

final class CatalogScanTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "catalog-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func touch(_ name: String, _ bytes: Int = 10) {
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/" + name, contents: Data(count: bytes)))
    }

    func testOursNewestFirstAndEverythingElseForeign() throws {
        let older = BackupName(kind: .scheduled, label: BackupName.scheduledPrefix, time: 1_700_000_000)
        let newer = BackupName(kind: .scheduled, label: BackupName.scheduledPrefix, time: 1_700_086_400)
        let manual = BackupName(kind: .manual, label: "pre-upgrade", time: 1_700_050_000)
        for name in [older, newer, manual] { touch(name.fileName) }
        touch("notes.txt")
        touch("abathur_garbage.db.gz")
        touch(SafeFiles.tempPrefix + "backup.db.gz-123")
        touch(Catalog.sumsName)
        touch(Catalog.lockName, 0)
        let catalog = try Catalog.scan(directory)
        XCTAssertEqual(catalog.entries.map(\.fileName), [newer.fileName, manual.fileName, older.fileName])
        XCTAssertEqual(catalog.foreign.sorted(), ["abathur_garbage.db.gz", "notes.txt"])
        XCTAssertTrue(catalog.entries.allSatisfy { $0.lacksManifest && !$0.isComplete }, "no manifest: incomplete")
        XCTAssertEqual(catalog.complete.count, 0)
        XCTAssertEqual(catalog.entry(named: String(newer.fileName.dropLast(BackupName.suffix.count)))?.fileName, newer.fileName)
    }

    func testAManifestNamingAnotherBackupIsAProblemNotAManifest() throws {
        let name = BackupName(kind: .scheduled, label: BackupName.scheduledPrefix, time: 1_700_000_000)
        touch(name.fileName)
        let other = BackupName(kind: .scheduled, label: BackupName.scheduledPrefix, time: 1_700_000_001)
        let json = #"{"format":1,"name":"\#(other.fileName)"}"#
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/" + name.manifestName, contents: Data(json.utf8)))
        let entry = try XCTUnwrap(try Catalog.scan(directory).entries.first)
        XCTAssertNil(entry.manifest)
        XCTAssertNotNil(entry.manifestProblem)
        XCTAssertFalse(entry.lacksManifest, "a bad manifest is not an interrupted publish")
    }

    func testFreeNameCountsUpPastTakenNames() throws {
        let time: Int64 = 1_700_000_000
        let first = BackupName(kind: .scheduled, label: BackupName.scheduledPrefix, time: time)
        touch(first.fileName)
        var second = first
        second.sequence = 2
        touch(second.manifestName)
        let free = try Catalog.scan(directory).freeName(kind: .scheduled, label: BackupName.scheduledPrefix, time: time)
        XCTAssertEqual(free.sequence, 3)
        XCTAssertNotEqual(free.fileName, first.fileName)
        XCTAssertEqual(BackupName(fileName: free.fileName), free)
    }
}
