import Foundation
import XCTest
@testable import AbathurTestSupport

/// FACTS.md 16: out of space looks different depending on what hits it. Every form exits 6
/// (or 8 for a plain I/O error), leaves nothing partial, and leaves existing backups and the
/// live files byte-identical.
final class NoSpaceTests: XCTestCase {
    func assertNothingLost(_ box: Sandbox, live: [String: String], backups: [String: String],
                           file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try box.fingerprint(box.liveDir), live, "live files changed", file: file, line: line)
        let now = try box.fingerprint(box.backups).filter { !$0.key.hasPrefix(".abathur-tmp-") }
        XCTAssertEqual(now.filter { $0.key != ".abathur.lock" }, backups.filter { $0.key != ".abathur.lock" },
                       "backup directory changed", file: file, line: line)
        let temps = try FileManager.default.contentsOfDirectory(atPath: box.backups).filter { $0.hasPrefix(".abathur-tmp-") }
        XCTAssertEqual(temps, [], "temp files left behind", file: file, line: line)
    }

    func testSmallFilesystemIsRefusedBeforeWritingAnything() throws {
        let box = try Sandbox()
        let mountPoint = box.backups
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = try Sandbox.shell("mount -t tmpfs -o size=4m,mode=0700 tmpfs '\(mountPoint)'")
        XCTAssertEqual(mount.status, 0, "this test needs root and tmpfs: \(mount.stderr)")
        defer { _ = try? Sandbox.shell("umount '\(mountPoint)'") }

        // A small database fits; its backup is the one that must survive.
        try box.makeDemoDatabase(rows: 50)
        XCTAssertEqual(try box.backup().status, 0)
        // A database too large for what is left.
        try FileManager.default.removeItem(atPath: box.db)
        try box.makeDemoDatabase(rows: 2500)
        let live = try box.fingerprint(box.liveDir)
        let backups = try box.fingerprint(box.backups)

        let result = try box.backup()
        XCTAssertEqual(result.status, 6, result.stderr)
        XCTAssertEqual(result.stderrLines.count, 1, result.stderr)
        XCTAssertTrue(result.stderr.hasPrefix("abathur-backup: error: \(box.backups): "), result.stderr)
        XCTAssertTrue(result.stderr.contains("bytes free"), result.stderr)
        try assertNothingLost(box, live: live, backups: backups)
    }

    func testENOSPCDuringTheCompressedWrite() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 2000)
        XCTAssertEqual(try box.backup().status, 0)
        let live = try box.fingerprint(box.liveDir)
        let backups = try box.fingerprint(box.backups)
        // The first writes are the compressed stream (the snapshot is written by SQLite).
        for n in [1, 2, 3] {
            let result = try box.backup([], env: ["ABATHUR_FAULT": "write:ENOSPC@\(n)"])
            XCTAssertEqual(result.status, 6, "write \(n): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("no space left on device"), result.stderr)
            try assertNothingLost(box, live: live, backups: backups)
        }
    }

    /// Files are created in this order: snapshot, .gz, manifest, SHA256SUMS. No space for the
    /// manifest means no new backup: the .gz must not be left under its final name.
    func testNoSpaceForTheManifestAddsNoBackup() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        XCTAssertEqual(try box.backup().status, 0)
        let live = try box.fingerprint(box.liveDir)
        let backups = try box.fingerprint(box.backups)
        let result = try box.backup([], env: ["ABATHUR_FAULT": "open:ENOSPC@3"])
        XCTAssertEqual(result.status, 6, result.stderr)
        XCTAssertEqual(result.stderrLines.count, 1, result.stderr)
        try assertNothingLost(box, live: live, backups: backups)
        // A failure linking the manifest into place also takes the .gz back out.
        let linkFailure = try box.backup([], env: ["ABATHUR_FAULT": "rename:EIO@2"])
        XCTAssertEqual(linkFailure.status, 8, linkFailure.stderr)
        try assertNothingLost(box, live: live, backups: backups)
    }

    func testEIOAtFsyncIsAnIOError() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        XCTAssertEqual(try box.backup().status, 0)
        let live = try box.fingerprint(box.liveDir)
        let backups = try box.fingerprint(box.backups)
        // fsyncs: the .gz, the manifest, the directory after publishing both.
        for n in 1...3 {
            let result = try box.backup([], env: ["ABATHUR_FAULT": "fsync:EIO@\(n)"])
            XCTAssertEqual(result.status, 8, "fsync \(n): \(result.stderr)")
            XCTAssertEqual(result.stderrLines.count, 1, result.stderr)
            try assertNothingLost(box, live: live, backups: backups)
        }
    }

    /// RLIMIT_FSIZE makes SQLite's own writes fail with EFBIG (SQLITE_IOERR_WRITE).
    func testFileSizeLimitIsNoSpace() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 2000)
        XCTAssertEqual(try box.backup().status, 0)
        let live = try box.fingerprint(box.liveDir)
        let backups = try box.fingerprint(box.backups)
        // 512 KiB: far smaller than the ~4 MiB snapshot.
        let result = try box.run("/usr/bin/prlimit", ["--fsize=524288", Binaries.tool("abathur-backup"),
                                                       "--db", box.db, "--backup-dir", box.backups])
        XCTAssertEqual(result.status, 6, result.stderr)
        XCTAssertEqual(result.stderrLines.count, 1, result.stderr)
        try assertNothingLost(box, live: live, backups: backups)
    }
}
