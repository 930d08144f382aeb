import Foundation
import XCTest
@testable import AbathurTestSupport

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
        try DyingWriter.run(box.db, """
        c.execute('BEGIN')
        for i in range(60):
            c.execute("INSERT INTO state(key, value, updated_at) VALUES (?, hex(randomblob(3000)), datetime('now'))", ('grow-%d' % i,))
        c.execute('COMMIT')
        """)
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

    /// An I/O error at any rename or fsync of a restore (the safety copy, the move aside, the
    /// rename, the directory fsyncs): the old database stays or comes back, the units run again,
    /// and the exit code says which (8: the swap failed, nothing replaced; 3: the rename had
    /// landed, so the restore went on to its post-check and was rolled back).
    func testAnIOErrorAtAnyStepOfTheSwapLeavesTheOldDatabaseAndTheUnitsRunning() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        let backup = try takeBackup(box)
        try commitLater(box, rows: 20)
        let saved = try saveLive(box)
        let old = try contents(try inspectionCopy(box))
        // Every rename and fsync a restore makes, counted by a traced run from the same state.
        try resetLive(box, from: saved)
        let traced = try FaultTrace.count(in: box.root) { env in
            let run = try restore(box, [], env: env)
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        let faults = FaultTrace.faults(traced, ops: ["rename", "fsync"], what: "EIO")
        var codes: Set<Int32> = []
        for fault in faults {
            try resetLive(box, from: saved)
            try? FileManager.default.removeItem(atPath: systemctlLog(box))
            let run = try restore(box, [], env: ["ABATHUR_FAULT": fault])
            let calls = systemctlCalls(box).map { String($0.prefix { $0 != " " }) }
            if run.status == 1 {
                // Restored; exit 1 when only the incident record could not be written.
                XCTAssertEqual(try box.sha256(box.db), backup.sha256, fault)
                XCTAssertEqual(calls, ["stop", "start"], fault)
                XCTAssertTrue(run.stderr.contains("incident record could not be written"), "\(fault): \(run.stderr)")
                continue
            }
            codes.insert(run.status)
            XCTAssertTrue([3, 8].contains(run.status), "\(fault): exit \(run.status): \(run.stderr)")
            XCTAssertEqual(try contents(try inspectionCopy(box)), old, "\(fault): the old database, its later commits included")
            // Failing before the units were stopped leaves them alone; after, they run again.
            XCTAssertTrue(calls.isEmpty || calls == ["stop", "start"] || calls == ["stop", "start", "stop", "start"],
                          "\(fault): the units run again: \(calls)")
        }
        XCTAssertTrue(codes.contains(8), "some error must have stopped the swap before its rename: \(codes)")
    }

    /// A unit that will not stop: the restore is refused, nothing changes, and the units are
    /// started again (a partial stop must not leave the service down).
    func testAUnitThatWillNotStopRefusesAndStartsTheUnitsAgain() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 200)
        _ = try takeBackup(box)
        let failing = """
        #!/bin/sh
        echo "$*" >> '\(systemctlLog(box))'
        [ "$1" = stop ] && { echo "Job for abathur-api.service canceled." >&2; exit 1; }
        exit 0

        """
        try failing.write(toFile: box.root + "/bin/systemctl", atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(box.root + "/bin/systemctl", 0o755), 0)
        let before = try liveFiles(box)
        let run = try restore(box)
        XCTAssertEqual(run.status, 7, run.stderr)
        XCTAssertTrue(run.stderr.contains("systemctl stop"), run.stderr)
        XCTAssertEqual(try liveFiles(box), before)
        XCTAssertEqual(systemctlCalls(box).map { String($0.prefix { $0 != " " }) }, ["stop", "start"])
        XCTAssertEqual(try safetyCopies(box), [])
    }

    /// SIGTERM, SIGINT and SIGHUP while the units are stopped (here: during a slow health
    /// check) do not stop the restore halfway: it finishes and the units run.
    func testTerminationSignalsWhileTheUnitsAreStoppedDoNotInterrupt() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 200)
        let backup = try takeBackup(box)
        let marker = box.root + "/health-started"
        let script = box.root + "/health.sh"
        try "#!/bin/sh\ntouch '\(marker)'\nsleep 1\nexit 0\n".write(toFile: script, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(script, 0o755), 0)
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ABATHUR_") }
        environment["ABATHUR_CONFIG"] = box.config
        for (key, value) in self.environment(box, ["ABATHUR_HEALTH_COMMAND": script, "ABATHUR_HEALTH_RETRIES": "1"]) { environment[key] = value }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.tool("abathur-restore"))
        process.arguments = ["--db", box.db, "--backup-dir", box.backups]
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try poll("the health check to start") { exists(marker) }
        for signal in [SIGTERM, SIGINT, SIGHUP] { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(try box.sha256(box.db), backup.sha256)
        XCTAssertEqual(systemctlCalls(box).map { String($0.prefix { $0 != " " }) }, ["stop", "start"])
    }

    /// A hot rollback journal is part of the database as it was: it reaches the safety copy
    /// byte for byte (the lock probe must not roll it back first), and the restore then goes on.
    func testAHotJournalIsInTheSafetyCopyAsItWas() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 200)
        let backup = try takeBackup(box)
        // Rollback-journal mode, then a transaction killed after it spilled pages to the file.
        try DyingWriter.run(box.db, """
        c.execute('PRAGMA journal_mode=DELETE')
        c.execute('PRAGMA cache_size=1')
        c.execute('BEGIN')
        c.execute("UPDATE tasks SET title = title || ' (half-written)'")
        """)
        XCTAssertTrue(exists(box.db + "-journal"), "a hot -journal was expected")
        let journal = try box.sha256(box.db + "-journal")
        let run = try restore(box)
        XCTAssertEqual(run.status, 0, run.stderr)
        let safety = try XCTUnwrap(try safetyCopies(box).first)
        XCTAssertEqual(try box.sha256(box.backups + "/safety/" + safety + "/abathur.db-journal"), journal)
        XCTAssertEqual(try box.sha256(box.db), backup.sha256)
        XCTAssertFalse(exists(box.db + "-journal"))
    }

    /// `--show` of a backup whose manifest is gone says so in one line and exits 3.
    func testShowOfAnIncompleteBackupSaysWhy() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 100)
        let backup = try takeBackup(box)
        try FileManager.default.removeItem(atPath: box.backups + "/" + backup.name + ".json")
        let run = try restore(box, ["--show", backup.name])
        XCTAssertEqual(run.status, 3, run.stderr)
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains(backup.name) && run.stderr.contains("not a complete backup"), run.stderr)
    }
}
