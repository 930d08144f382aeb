import Foundation
import XCTest
@testable import AbathurTestSupport

/// etc/systemd/abathur-backup.service gives the nightly backup write access to the backup
/// and metrics directories only: the database directory stays read-only under
/// `ProtectSystem=strict`, since the live reader never writes or creates a file there
/// (LiveReader). Here the database directory is bind-mounted read-only, as the unit leaves it,
/// and backups of each live state still succeed and leave it byte-identical.
final class BackupUnitTests: XCTestCase {
    static var unit: String { DocsDriftTests.repoRoot.appendingPathComponent("etc/systemd/abathur-backup.service").path }

    /// The unit's `ReadWritePaths=`, without the `-` that tolerates a missing path.
    func testTheUnitDoesNotGrantTheDatabaseDirectory() throws {
        let text = try String(contentsOfFile: Self.unit, encoding: .utf8)
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("ReadWritePaths=") }
        XCTAssertEqual(lines.count, 1, "one ReadWritePaths= line")
        let paths = lines.flatMap { $0.dropFirst("ReadWritePaths=".count).split(separator: " ") }
            .map { $0.hasPrefix("-") ? String($0.dropFirst()) : String($0) }
        XCTAssertTrue(paths.contains("/var/backups/abathur"), "\(paths)")
        XCTAssertFalse(paths.contains { "/var/lib/abathur/abathur.db".hasPrefix($0 + "/") }, "the database directory is not writable: \(paths)")
        XCTAssertTrue(text.contains("ProtectSystem=strict"), "everything else is read-only")
    }

    /// `live` bind-mounted read-only over itself for the rest of the test.
    func mountReadOnly(_ box: Sandbox) throws {
        let mount = try Sandbox.shell("mount --bind '\(box.liveDir)' '\(box.liveDir)' && mount -o remount,ro,bind '\(box.liveDir)'")
        XCTAssertEqual(mount.status, 0, "this test needs root: \(mount.stderr)")
        addTeardownBlock { _ = try? Sandbox.shell("umount '\(box.liveDir)'") }
        XCTAssertNotEqual(try Sandbox.shell("touch '\(box.liveDir)/probe'").status, 0, "the database directory is read-only")
    }

    func assertBackupLeavesTheReadOnlyDirectory(_ box: Sandbox, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try box.fingerprint(box.liveDir)
        try mountReadOnly(box)
        let run = try box.backup()
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        XCTAssertEqual(try box.fingerprint(box.liveDir), before, "nothing in the database directory changed", file: file, line: line)
        XCTAssertEqual(try box.backupFiles().filter { $0.hasSuffix(".db.gz") }.count, 1, file: file, line: line)
    }

    func testBackupOfACleanDatabaseInAReadOnlyDirectory() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-wal"))
        try assertBackupLeavesTheReadOnlyDirectory(box)
    }

    func testBackupOfAHotWALInAReadOnlyDirectory() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        try box.makeHotWAL(inserts: 20)
        try assertBackupLeavesTheReadOnlyDirectory(box)
    }

    /// No `-shm` to read the WAL through: the reader copies both into the backup directory
    /// and reads the copy, instead of letting SQLite create a `-shm`.
    func testBackupOfAWALWithoutItsSharedMemoryInAReadOnlyDirectory() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        try box.makeHotWAL(inserts: 20)
        try FileManager.default.removeItem(atPath: box.db + "-shm")
        try assertBackupLeavesTheReadOnlyDirectory(box)
    }
}
