import Foundation
import XCTest
@testable import AbathurTestSupport

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

    /// Two real backup runs at once: the second exits 5 while the first holds the lock.
    /// Deterministic under any load: the first streams with `--stdout` into a pipe shrunk to
    /// one page that nobody reads yet, so it holds the lock (blocked in write) for as long as
    /// the test needs; then the pipe is drained and the first finishes with a whole stream.
    func testTwoRealBackupsAtOnce() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 4000)
        try FileManager.default.createDirectory(atPath: box.backups, withIntermediateDirectories: true)
        let pipe = Pipe()
        XCTAssertGreaterThan(fcntl(pipe.fileHandleForWriting.fileDescriptor, 1031 /* F_SETPIPE_SZ */, 4096), 0)
        let first = Process()
        first.executableURL = URL(fileURLWithPath: Binaries.tool("abathur-backup"))
        first.arguments = ["--stdout", "--db", box.db, "--backup-dir", box.backups]
        first.environment = ["ABATHUR_CONFIG": box.config]
        first.standardOutput = pipe
        try first.run()
        try? pipe.fileHandleForWriting.close()
        defer { if first.isRunning { first.terminate() } }
        // The first run streams only once it holds the lock and has a verified backup: data in
        // the pipe means it is blocked in write, lock held. (Probing with flock -n instead
        // could itself hold the lock just when the first run tries it.)
        var poller = pollfd(fd: pipe.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0)
        while poll(&poller, 1, 100) == 0 {
            XCTAssertTrue(first.isRunning, "the first backup ended before it streamed")
            if !first.isRunning { return }
        }
        let second = try box.backup()
        XCTAssertEqual(second.status, 5, "a second backup while the first runs: \(second.stderr)")
        XCTAssertTrue(second.stderr.contains(".abathur.lock"), second.stderr)
        let stream = pipe.fileHandleForReading.readDataToEndOfFile()
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0)
        let copy = box.root + "/streamed.db.gz"
        try stream.write(to: URL(fileURLWithPath: copy))
        XCTAssertEqual(try Sandbox.shell("gunzip -t '\(copy)'").status, 0, "the first run's stream is whole")
        XCTAssertEqual(try box.backup().status, 0, "and the lock is free again")
    }
}
