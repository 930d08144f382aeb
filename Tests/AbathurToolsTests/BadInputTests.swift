import Foundation
import XCTest
@testable import AbathurTestSupport

/// Bad input: one clear line on stderr naming the file, the documented exit code, nothing
/// lost, nothing rotated.
final class BadInputTests: XCTestCase {
    func assertOneLine(_ run: Run, naming path: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr, file: file, line: line)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-backup: error: \(path): "), run.stderr, file: file, line: line)
    }

    func testMissingDatabaseIsNotCreated() throws {
        let box = try Sandbox()
        let result = try box.backup()
        XCTAssertEqual(result.status, 8, result.stderr)
        assertOneLine(result, naming: box.db)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db), "a missing database must not be created")
        XCTAssertEqual(try box.fingerprint(box.liveDir), [:])
    }

    func testEmptyFileIsCorrupt() throws {
        let box = try Sandbox()
        FileManager.default.createFile(atPath: box.db, contents: Data())
        let result = try box.backup()
        XCTAssertEqual(result.status, 4, result.stderr)
        assertOneLine(result, naming: box.db)
        XCTAssertEqual(try box.backupFiles(), [])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: box.db)[.size] as? Int, 0)
    }

    func testNonSQLiteFileIsCorrupt() throws {
        let box = try Sandbox()
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: box.db))
        let result = try box.backup()
        XCTAssertEqual(result.status, 4, result.stderr)
        assertOneLine(result, naming: box.db)
        XCTAssertTrue(result.stderr.contains("not an SQLite database"), result.stderr)
    }

    /// A corrupt source exits 4, writes no backup and rotates nothing, even when every
    /// existing backup is old enough to be pruned.
    func testCorruptDatabaseRotatesNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 2000)
        let old = Int(Date().timeIntervalSince1970) - 200 * 86400
        for day in 0..<4 {
            XCTAssertEqual(try box.backup([], env: ["ABATHUR_NOW": "\(old + day * 86400)"]).status, 0)
        }
        let backups = try box.fingerprint(box.backups)
        // Zero a page in the middle of the file: a table or index b-tree page.
        let checkpoint = try Sandbox.shell("sqlite3 '\(box.db)' 'PRAGMA wal_checkpoint(TRUNCATE)'")
        XCTAssertEqual(checkpoint.status, 0)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: box.db))
        try handle.seek(toOffset: 4096 * 40)
        handle.write(Data(repeating: 0xA5, count: 4096))
        try handle.close()
        let live = try box.fingerprint(box.liveDir)

        let result = try box.backup()
        XCTAssertEqual(result.status, 4, result.stderr)
        assertOneLine(result, naming: box.db)
        XCTAssertEqual(try box.fingerprint(box.backups).filter { $0.key != ".abathur.lock" },
                       backups.filter { $0.key != ".abathur.lock" }, "nothing rotated, nothing added")
        XCTAssertEqual(try box.fingerprint(box.liveDir), live)
    }

    func testMissingTableFailsTheSchemaCheck() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        // Milestone 3's tables go first, data table first (they reference document_index and each other: a foreign-key problem of its own).
        XCTAssertEqual(try Sandbox.shell("sqlite3 '\(box.db)' 'DROP TABLE document_embeddings_data; DROP TABLE document_embeddings; DROP TABLE document_index'").status, 0)
        let result = try box.backup()
        XCTAssertEqual(result.status, 4, result.stderr)
        XCTAssertTrue(result.stderr.contains("missing table(s) document_index"), result.stderr)
        XCTAssertEqual(try box.backupFiles(), [])
    }

    func testUnwritableBackupDirectory() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        // A read-only bind mount: root ignores permission bits, not a read-only filesystem.
        try FileManager.default.createDirectory(atPath: box.backups, withIntermediateDirectories: true)
        XCTAssertEqual(try Sandbox.shell("mount --bind '\(box.backups)' '\(box.backups)' && mount -o remount,bind,ro '\(box.backups)'").status, 0)
        defer { _ = try? Sandbox.shell("umount '\(box.backups)'") }
        let live = try box.fingerprint(box.liveDir)
        let result = try box.backup()
        XCTAssertEqual(result.status, 7, result.stderr)
        assertOneLine(result, naming: box.backups + "/.abathur.lock")
        XCTAssertEqual(try box.fingerprint(box.liveDir), live)
    }

    func testSymlinksUnderOurNamesAreNeverFollowedOrDeleted() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        try FileManager.default.createDirectory(atPath: box.backups, withIntermediateDirectories: true)
        let victim = box.root + "/victim.txt"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        let fm = FileManager.default
        // Under a backup name, a manifest name, and the temp prefix the sweep looks for.
        let planted = ["abathur_2020-01-01_00-00-00.db.gz", "abathur_2020-01-01_00-00-00.db.gz.json",
                       ".abathur-tmp-1-abc-backup.db.gz", "SHA256SUMS.bak"]
        for name in planted { try fm.createSymbolicLink(atPath: box.backups + "/" + name, withDestinationPath: victim) }
        let old = Int(Date().timeIntervalSince1970) - 400 * 86400
        for day in 0..<3 { XCTAssertEqual(try box.backup([], env: ["ABATHUR_NOW": "\(old + day)"]).status, 0) }
        XCTAssertEqual(try box.backup().status, 0)
        let prune = try box.run("abathur-backup", ["prune", "--backup-dir", box.backups])
        XCTAssertEqual(prune.status, 0, prune.stderr)
        for name in planted {
            XCTAssertEqual(try fm.destinationOfSymbolicLink(atPath: box.backups + "/" + name), victim, name)
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
        let verify = try box.run("abathur-backup", ["verify", "abathur_2020-01-01_00-00-00.db.gz", "--backup-dir", box.backups])
        XCTAssertEqual(verify.status, 3, verify.stderr)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
    }

    func testBadConfigNamesFileAndLine() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        try Data("# ok\nretention_days = 30\nretention_dayz = 5\n".utf8).write(to: URL(fileURLWithPath: box.config))
        let result = try box.backup()
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertEqual(result.stderr, "abathur-backup: error: \(box.config):3: unknown setting \"retention_dayz\"\n")
        let missing = try box.run("abathur-backup", ["--config", box.root + "/nope.conf", "--db", box.db])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("nope.conf: no such file"), missing.stderr)
    }

    func testUnknownOptionIsAUsageError() throws {
        let box = try Sandbox()
        let result = try box.run("abathur-backup", ["--frobnicate"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stderr, "abathur-backup: error: Unknown option '--frobnicate' (see 'abathur-backup --help')\n")
    }
}
