import Foundation
import XCTest

/// One flock per backup directory: a second instance exits 5 at once, or waits with --wait.
final class LockTests: XCTestCase {
    /// Holds the directory's lock from another process (flock(1)) while `body` runs.
    func withLockHeld(_ box: Sandbox, seconds: Double, _ body: () throws -> Void) throws {
        try FileManager.default.createDirectory(atPath: box.backups, withIntermediateDirectories: true)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["-x", box.backups + "/.abathur.lock", "sleep", "\(seconds)"]
        try holder.run()
        defer {
            // flock(1) waits for its child; end the child, then flock.
            _ = try? Sandbox.shell("pkill -P \(holder.processIdentifier)")
            holder.terminate()
            holder.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.3)
        try body()
    }

    func testSecondInstanceExitsFiveAtOnce() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        try withLockHeld(box, seconds: 30) {
            let started = Date()
            let result = try box.backup()
            XCTAssertEqual(result.status, 5, result.stderr)
            XCTAssertLessThan(Date().timeIntervalSince(started), 10, "must not wait without --wait")
            XCTAssertTrue(result.stderr.contains(".abathur.lock"), result.stderr)
            XCTAssertEqual(try box.backupFiles(), [])
        }
    }

    func testWaitGetsTheLockWhenItIsReleased() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        try withLockHeld(box, seconds: 2) {
            let result = try box.backup(["--wait", "30"])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(try box.backupFiles().count, 1)
        }
    }

    func testWaitGivesUpWithFive() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        try withLockHeld(box, seconds: 30) {
            let result = try box.backup(["--wait", "1"])
            XCTAssertEqual(result.status, 5, result.stderr)
        }
    }

    func testTwoRealBackupsAtOnce() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 4000)
        try FileManager.default.createDirectory(atPath: box.backups, withIntermediateDirectories: true)
        let first = Process()
        first.executableURL = URL(fileURLWithPath: Binaries.tool("abathur-backup"))
        first.arguments = ["--db", box.db, "--backup-dir", box.backups]
        first.environment = ["ABATHUR_CONFIG": box.config]
        first.standardOutput = FileHandle.nullDevice
        try first.run()
        // Wait until the first run holds the lock (its snapshot temp file, made under the
        // lock, exists), then race it. Probing with flock(1) would take the lock itself, and
        // a first run that tried it just then would exit 5.
        let marker = ".abathur-tmp-\(first.processIdentifier)-"
        while first.isRunning, !((try? FileManager.default.contentsOfDirectory(atPath: box.backups)) ?? []).contains(where: { $0.hasPrefix(marker) }) {
            Thread.sleep(forTimeInterval: 0.001)
        }
        var sawBusy = false
        while first.isRunning {
            let second = try box.backup()
            if second.status == 5 { sawBusy = true; break }
        }
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0)
        XCTAssertTrue(sawBusy, "a second backup while the first ran should have exited 5")
    }
}
