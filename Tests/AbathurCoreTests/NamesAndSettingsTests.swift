import AbathurCore
import Foundation
import XCTest

final class BackupNameTests: XCTestCase {
    func testScheduledNamesRoundTripAndSortByTime() throws {
        let t = Clock.epoch(year: 2026, month: 11, day: 27, hour: 2, minute: 0, second: 5)
        let name = BackupName(kind: .scheduled, label: "abathur", time: t)
        XCTAssertEqual(name.fileName, "abathur_2026-11-27_02-00-05.db.gz")
        XCTAssertEqual(BackupName(fileName: name.fileName), name)
        var second = name
        second.sequence = 2
        XCTAssertEqual(second.fileName, "abathur_2026-11-27_02-00-05_2.db.gz")
        XCTAssertEqual(BackupName(fileName: second.fileName)?.sequence, 2)
        XCTAssertLessThan(name, second)
        XCTAssertLessThan(name.fileName, second.fileName, "names sort by time as plain strings too")
    }

    func testManualNames() {
        let t = Clock.epoch(year: 2026, month: 1, day: 2, hour: 3, minute: 4, second: 5)
        XCTAssertEqual(BackupName(kind: .manual, label: "manual", time: t).fileName, "manual_20260102_030405.db.gz")
        XCTAssertEqual(BackupName(fileName: "pre-migration_20260102_030405.db.gz")?.label, "pre-migration")
    }

    func testForeignNamesAreNotOurs() {
        for name in ["abathur.db", "abathur_2026-13-01_00-00-00.db.gz", "abathur_2026-11-27_02-00-05.db.gz.tmp",
                     "abathur_20261127_020005.db.gz", "manual_2026-11-27_02-00-05.db.gz", "Manual_20260102_030405.db.gz",
                     "x_20260102_030405_1.db.gz", "abathur_2026-11-27_02-00-05_01.db.gz", "../abathur_2026-11-27_02-00-05.db.gz"] {
            XCTAssertNil(BackupName(fileName: name), name)
        }
        XCTAssertFalse(BackupName.isValidLabel("abathur"))
        XCTAssertFalse(BackupName.isValidLabel("-x"))
        XCTAssertFalse(BackupName.isValidLabel("a_b"))
        XCTAssertTrue(BackupName.isValidLabel("pre-upgrade-2"))
    }
}

final class SettingsTests: XCTestCase {
    func testPrecedenceIsFlagThenEnvironmentThenFileThenDefault() throws {
        let path = NSTemporaryDirectory() + "conf-\(UUID().uuidString)"
        try Data("# comment\n\nretention_days = 10\ncompression_level=\"4\"\nbackup_dir = /from/file\n".utf8)
            .write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = try Settings(flags: [.backupDir: ("--backup-dir", "/from/flag")], configPath: path,
                                    environment: ["ABATHUR_BACKUP_DIR": "/from/env", "ABATHUR_RETENTION_DAYS": "20"])
        XCTAssertEqual(settings.string(.backupDir), "/from/flag")
        XCTAssertEqual(settings[.backupDir].source, .flag("--backup-dir"))
        XCTAssertEqual(try settings.integer(.retentionDays, in: 1...100), 20)
        XCTAssertEqual(settings[.retentionDays].source, .environment("ABATHUR_RETENTION_DAYS"))
        XCTAssertEqual(try settings.integer(.compressionLevel, in: 1...9), 4)
        XCTAssertEqual(settings[.compressionLevel].source, .file(path, line: 4))
        XCTAssertEqual(settings.string(.database), "/var/lib/abathur/abathur.db")
        XCTAssertEqual(settings[.database].source, .defaultValue)
    }

    func testBadValuesNameTheirSource() throws {
        let settings = try Settings(flags: [:], configPath: "/dev/null", environment: ["ABATHUR_COMPRESSION_LEVEL": "11"])
        XCTAssertThrowsError(try settings.integer(.compressionLevel, in: 1...9)) { error in
            XCTAssertEqual((error as? AbathurError)?.kind, .usage)
            XCTAssertTrue("\(error)".contains("environment ABATHUR_COMPRESSION_LEVEL"), "\(error)")
        }
    }

    func testDurations() {
        XCTAssertEqual(Duration.parse("90s"), 90)
        XCTAssertEqual(Duration.parse("26h"), 93600)
        XCTAssertEqual(Duration.parse("7d"), 604800)
        XCTAssertEqual(Duration.parse("120"), 120)
        XCTAssertNil(Duration.parse("soon"))
        XCTAssertNil(Duration.parse("-5m"))
    }
}

final class DatabaseHeaderTests: XCTestCase {
    func header(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 100)
        bytes.replaceSubrange(0..<16, with: Array("SQLite format 3\0".utf8))
        bytes[16] = 0x10; bytes[17] = 0x00  // 4096
        bytes[18] = 2; bytes[19] = 2
        bytes[21] = 64; bytes[22] = 32; bytes[23] = 32
        bytes[31] = 9  // 9 pages
        bytes[27] = 3; bytes[95] = 3  // change counter = version-valid-for
        bytes[47] = 4; bytes[59] = 1
        edit(&bytes)
        return bytes
    }

    func testParsesAValidHeader() throws {
        let h = try DatabaseHeader(bytes: header { _ in })
        XCTAssertEqual(h.pageSize, 4096)
        XCTAssertEqual(h.pageCount, 9)
        XCTAssertTrue(h.pageCountIsValid)
        XCTAssertTrue(h.isWAL)
        XCTAssertEqual(try DatabaseHeader(bytes: header { $0[16] = 0; $0[17] = 1 }).pageSize, 65536)
    }

    func testRejectsWhatIsNotADatabase() {
        XCTAssertThrowsError(try DatabaseHeader(bytes: [])) { XCTAssertEqual($0 as? DatabaseHeader.Problem, .empty) }
        XCTAssertThrowsError(try DatabaseHeader(bytes: Array(header { _ in }.prefix(50)))) {
            XCTAssertEqual($0 as? DatabaseHeader.Problem, .tooShort(50))
        }
        XCTAssertThrowsError(try DatabaseHeader(bytes: header { $0[0] = 0x73 })) { XCTAssertEqual($0 as? DatabaseHeader.Problem, .badMagic) }
        XCTAssertThrowsError(try DatabaseHeader(bytes: header { $0[16] = 0x03; $0[17] = 0 })) {
            XCTAssertEqual($0 as? DatabaseHeader.Problem, .badPageSize(768))
        }
        XCTAssertThrowsError(try DatabaseHeader(bytes: header { $0[59] = 7 }))
    }
}
