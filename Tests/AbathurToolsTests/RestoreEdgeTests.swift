import Foundation
import XCTest

/// The edges a review of abathur-restore found: a checkpoint that fails while settling the old
/// database, the health check when this run started no units, a raw `.db` source with its
/// `-wal`, the live database as its own source, a health command that leaves a background
/// process, and settings that must be refused instead of trapping. Uses RestoreSafetyTests'
/// world (fake systemctl, hot WAL helpers).
extension RestoreSafetyTests {
    /// A checkpoint that fails (here: RLIMIT_FSIZE stops the old database from growing) must
    /// not move the -wal away from the half-checkpointed database: the old database stays
    /// whole with its -wal, nothing is swapped, the units run again.
    func testAFailedCheckpointOfTheOldDatabaseMovesNothingAndSwapsNothing() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        _ = try takeBackup(box)
        // Later commits that grow the database well beyond its size once checkpointed, in a
        // -wal smaller than the limit set below.
        let grow = """
        import sqlite3, os, sys
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute('PRAGMA wal_autocheckpoint=0')
        c.execute('BEGIN')
        for i in range(60):
            c.execute("INSERT INTO state(key, value, updated_at) VALUES (?, hex(randomblob(3000)), datetime('now'))", ('grow-%d' % i,))
        c.execute('COMMIT')
        os._exit(0)
        """
        XCTAssertEqual(try Sandbox.execute("/usr/bin/python3", ["-c", grow, box.db]).status, 0)
        let old = try contents(try inspectionCopy(box))
        let before = try liveFiles(box)
        let sizes = try ["", "-wal", "-shm"].map { (try FileManager.default.attributesOfItem(atPath: box.db + $0)[.size] as! NSNumber).intValue }
        let limit = sizes.max()! + 16 * 1024
        XCTAssertLessThan(sizes[0] + 300 * 1024, limit + sizes[1], "the checkpoint must need more than the limit")

        let run = try Sandbox.execute("/usr/bin/prlimit", ["--fsize=\(limit)", Binaries.tool("abathur-restore"),
                                                            "--db", box.db, "--backup-dir", box.backups],
                                      environment: ProcessInfo.processInfo.environment.merging(
                                          environment(box, ["ABATHUR_CONFIG": box.config])) { $1 })
        XCTAssertTrue([6, 8].contains(run.status), "no space or I/O error, got \(run.status): \(run.stderr)")
        XCTAssertEqual(run.stderrLines.filter { $0.contains("error:") }.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("checkpoint"), run.stderr)
        // The -wal is still beside the database, and together they are the old database.
        XCTAssertTrue(exists(box.db + "-wal"), "the -wal must not be moved away from a half-checkpointed database")
        XCTAssertEqual(try contents(try inspectionCopy(box)), old)
        XCTAssertEqual(try liveFiles(box).keys.sorted(), before.keys.sorted())
        let calls = systemctlCalls(box).map { String($0.prefix { $0 != " " }) }
        XCTAssertEqual(calls, ["stop", "start"], "units started again: \(systemctlCalls(box))")
        let check = try Sandbox.execute(Binaries.demo, ["check", try inspectionCopy(box)])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
    }

    /// With --no-services nothing starts the service, so nothing can answer a health check:
    /// it is skipped (and says so), not failed and rolled back.
    func testNoServicesSkipsTheHealthCheck() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 200)
        let backup = try takeBackup(box)
        let run = try restore(box, ["--no-services", "--verbose"], env: ["ABATHUR_HEALTH_URL": "http://127.0.0.1:9/health"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("health check: skipped"), run.stderr)
        XCTAssertEqual(try box.sha256(box.db), backup.sha256)
        XCTAssertEqual(systemctlCalls(box), [])
    }

    /// A raw database with a hot -wal beside it (the files of a safety copy) is restored with
    /// the -wal's commits folded in; the live database itself is refused as a source.
    func testRawDatabaseWithItsWALIsRestoredWhole() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        _ = try takeBackup(box)
        try commitLater(box, rows: 25)
        let wanted = try contents(try inspectionCopy(box))

        let selfRun = try restore(box, ["--no-services", box.db])
        XCTAssertEqual(selfRun.status, 2, selfRun.stderr)
        XCTAssertTrue(selfRun.stderr.contains("the database itself"), selfRun.stderr)

        // Restore an older backup, then bring the database with its WAL back from the safety copy.
        let restored = try restore(box, ["--no-services"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertNotEqual(try contents(try inspectionCopy(box)), wanted)
        let safety = try XCTUnwrap(try safetyCopies(box).first)
        let raw = box.backups + "/safety/" + safety + "/abathur.db"
        XCTAssertTrue(exists(raw + "-wal"))
        let back = try restore(box, ["--no-services", raw])
        XCTAssertEqual(back.status, 0, back.stderr)
        XCTAssertEqual(try contents(try inspectionCopy(box)), wanted, "the -wal's commits came back with the database")
        XCTAssertFalse(exists(box.db + "-wal"))
        XCTAssertTrue(exists(raw + "-wal"), "the source's files are left as they were")
    }

    /// A health command that exits 0 but leaves a background process holding its output is
    /// healthy at once, not "timed out".
    func testAHealthCommandLeavingABackgroundProcessIsNotATimeout() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 200)
        let backup = try takeBackup(box)
        let script = box.root + "/health.sh"
        try "#!/bin/sh\nsleep 30 &\necho healthy\nexit 0\n".write(toFile: script, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(script, 0o755), 0)
        let started = Date()
        let run = try restore(box, [], env: ["ABATHUR_HEALTH_COMMAND": script, "ABATHUR_HEALTH_TIMEOUT": "10s", "ABATHUR_HEALTH_RETRIES": "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "the health check did not wait for the background sleep")
        XCTAssertEqual(try box.sha256(box.db), backup.sha256)
    }

    /// Settings and times that would overflow are usage errors (exit 2), never a trap.
    func testOutOfRangeTimesAndDurationsAreUsageErrors() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 100)
        _ = try takeBackup(box)
        let before = try liveFiles(box)
        for args in [["--before", "2026-02-31"], ["--before", "1000000000000-01-01"], ["--before", "0999-01-01"]] {
            let run = try restore(box, ["--dry-run"] + args)
            XCTAssertEqual(run.status, 2, "\(args): \(run.stderr)")
            XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        }
        for (key, value) in [("ABATHUR_HEALTH_INTERVAL", "inf"), ("ABATHUR_HEALTH_INTERVAL", "1e300"), ("ABATHUR_HEALTH_TIMEOUT", "0"),
                             ("ABATHUR_HEALTH_TIMEOUT", "30d"), ("ABATHUR_HEALTH_COMMAND", "curl \"http://x/\"")] {
            let run = try restore(box, ["--dry-run"], env: [key: value])
            XCTAssertEqual(run.status, 2, "\(key)=\(value): \(run.stderr)")
            XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        }
        XCTAssertEqual(try liveFiles(box), before)
    }

    /// A drill killed mid-way leaves its scratch copy in temp_dir; the next drill removes it
    /// (its process is gone) and leaves one whose process still runs.
    func testADrillSweepsScratchCopiesOfKilledDrills() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 100)
        _ = try takeBackup(box)
        let temp = box.root + "/tmp"
        let exited = try Sandbox.execute("/bin/sh", ["-c", "echo $$"])
        let deadPid = try XCTUnwrap(Int32(exited.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let dead = temp + "/.abathur-tmp-\(deadPid)-1f2e-drill"
        let alive = temp + "/.abathur-tmp-\(getpid())-3c4d-drill"
        for dir in [dead, alive] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/abathur.db", contents: Data(count: 4096)))
        }
        let run = try restore(box, ["--drill"], env: ["ABATHUR_TEMP_DIR": temp])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertFalse(exists(dead), "the killed drill's scratch copy is swept")
        XCTAssertTrue(exists(alive + "/abathur.db"), "a running drill's scratch copy is left alone")
    }
}
