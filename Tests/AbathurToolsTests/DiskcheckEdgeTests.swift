import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-diskcheck --fix` and `--dry-run` at the edges (issue 12), on small real
/// filesystems with real SQLite and real processes: a -wal whose checkpoint would lose commits
/// stops the fix at step 2 with exit 4 and nothing after it runs; the backup directory's lock
/// held by another process is exit 5 and nothing changes, and `--wait` waits for it;
/// `--no-services` runs the VACUUM without systemctl; a process holding the database makes
/// the VACUUM "refused" with its pid, the units started again; `auto_vacuum=INCREMENTAL` gets
/// `PRAGMA incremental_vacuum`; a dry run on a full filesystem exits with the level now and
/// changes nothing, the reserve included.
final class DiskcheckEdgeTests: DiskcheckTestCase {

    // MARK: - plumbing

    /// The whole `--json` document of a run.
    func document(_ run: Run, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(try? JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any],
                      "one JSON document: \(run.stdout) \(run.stderr)", file: file, line: line)
    }

    func steps(_ result: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let fix = try XCTUnwrap(result["fix"] as? [String: Any], "\(result.keys.sorted())", file: file, line: line)
        return try XCTUnwrap(fix["steps"] as? [[String: Any]], "\(fix)", file: file, line: line)
    }

    func systemctlLog(_ log: String) -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Every entry under `root`, recursively, by relative path: type, inode, size, blocks,
    /// mtime and, for a file, its SHA-256. "Changes nothing" made checkable: a file rewritten,
    /// replaced (temp + rename), reallocated, or created and removed again in a directory shows.
    func everything(_ box: Sandbox, under root: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: String] {
        var result: [String: String] = [:]
        guard let walk = FileManager.default.enumerator(atPath: root) else { return [:] }
        var entries = ["."]
        while let relative = walk.nextObject() as? String { entries.append(relative) }
        for relative in entries {
            let path = root + "/" + relative
            var st = stat()
            XCTAssertEqual(lstat(path, &st), 0, path, file: file, line: line)
            var entry = "mode \(String(st.st_mode, radix: 8)) ino \(st.st_ino) size \(st.st_size) blocks \(st.st_blocks) mtime \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            if st.st_mode & S_IFMT == S_IFREG { entry += " sha256 " + (try box.sha256(path)) }
            if st.st_mode & S_IFMT == S_IFLNK { entry += " -> " + (try FileManager.default.destinationOfSymbolicLink(atPath: path)) }
            result[relative] = entry
        }
        return result
    }

    /// The keys of two snapshots that differ.
    func changed(_ before: [String: String], _ after: [String: String]) -> [String] {
        Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
    }

    /// A python3 helper process: writes `ready ...` on stdout when it holds what it holds, then
    /// reads stdin; it exits at EOF.
    final class Helper {
        let process = Process()
        let input = Pipe()
        let output = Pipe()
        var pid: Int32 { process.processIdentifier }

        init(_ script: String, _ args: [String]) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", script] + args
            process.standardInput = input
            process.standardOutput = output
            try process.run()
        }

        func readLine() -> String { output.fileHandleForReading.readLine() }

        func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }

        /// Closes its stdin and waits for it.
        func finish() {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    // MARK: - 1. a -wal whose checkpoint would lose commits

    /// A -wal with a damaged frame followed by intact commits (FACTS 10) on a filesystem filled
    /// to the last blocks: step 2 refuses the checkpoint, the fix stops there with exit 4, the
    /// step's record names the WAL, db/-wal/-shm stay byte-identical, and nothing after step 2
    /// runs: the stale temp file, the prunable backups and the freelist all stay.
    func testAWALThatWouldLoseCommitsStopsTheFixAtTheCheckpointWithExit4() throws {
        let box = try Sandbox()
        let scenario = try box.makeScenario(.damagedHeader)
        XCTAssertEqual(scenario.droppedCommits, 6)
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "16m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        // Four backups (two above keep_min_verified=2: step 5 would prune them) of a demo
        // database, then the damaged scenario's files in its place.
        try world.makeDatabase(rows: 300)
        for i in 0..<4 { try world.backup(at: Self.t0 + i * Self.hour) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: world.db + "-wal"))
        try FileManager.default.removeItem(atPath: world.db)
        for suffix in ["", "-wal", "-shm"] { try FileManager.default.copyItem(atPath: box.db + suffix, toPath: world.db + suffix) }
        XCTAssertEqual(try databaseFiles(world), [scenario.files["abathur.db"], scenario.files["abathur.db-wal"], scenario.files["abathur.db-shm"]])
        let temp = try plantStaleTemp(in: world.backups, bytes: 64 << 10)
        try fs.fill(leaving: 100 << 10)
        let before = try everything(box, under: fs.mountPoint)
        let space = try fs.space()

        let run = try world.diskcheck(["--fix", "--json"])
        XCTAssertEqual(run.status, 4, "the WAL would lose commits: \(run.stderr)")
        let document = try document(run)
        XCTAssertEqual(document["exit_code"] as? Int, 4, "\(document.keys.sorted())")
        let result = try XCTUnwrap(document["result"] as? [String: Any])
        let steps = try steps(result)
        XCTAssertEqual(steps.map { $0["name"] as? String }, Array(Self.stepNames.prefix(2)), "the fix stopped at step 2: \(steps)")
        XCTAssertEqual(statuses(steps), ["skipped", "refused"], "\(steps)")
        let checkpoint = try XCTUnwrap(steps.last)
        XCTAssertEqual(checkpoint["number"] as? Int, 2)
        let detail = checkpoint["detail"] as? String ?? ""
        XCTAssertTrue(detail.contains(world.db + "-wal"), "the WAL named: \(detail)")
        XCTAssertTrue(detail.contains("so none was run"), detail)
        XCTAssertNil(checkpoint["freed_bytes"], "claims nothing: \(checkpoint)")
        XCTAssertTrue(run.stderr.contains(world.db + "-wal"), run.stderr)

        XCTAssertEqual(try databaseFiles(world), [scenario.files["abathur.db"], scenario.files["abathur.db-wal"], scenario.files["abathur.db-shm"]],
                       "db, -wal and -shm byte-identical")
        XCTAssertTrue(FileManager.default.fileExists(atPath: temp), "step 3 did not run")
        // What the fix itself leaves: the database's lock file (empty; one inode), and the
        // temp directory's mtime (the offline WAL check's scratch directory came and went).
        // Nothing else: no backup pruned, no VACUUM.
        let lockFile = "live/.abathur.db.abathur-lock"
        let after = try everything(box, under: fs.mountPoint)
        XCTAssertEqual(changed(before, after), ["live", lockFile, "tmp"], "nothing after step 2 ran")
        XCTAssertEqual(FileBlocks(fs.mountPoint + "/" + lockFile)?.size, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: world.tmp), [], "no scratch left in temp_dir")
        var expectedSpace = space
        expectedSpace.freeInodes -= 1
        XCTAssertEqual(try fs.space(), expectedSpace, "the lock file's inode, no byte")

        // The same in human form: the step line, and exit 4 again.
        let human = try world.diskcheck(["--fix"])
        XCTAssertEqual(human.status, 4, human.stderr)
        XCTAssertTrue(human.stdout.contains("step 2, checkpoint (TRUNCATE): refused: \(world.db)-wal: "), human.stdout)
        XCTAssertFalse(human.stdout.contains("step 3,"), human.stdout)
        XCTAssertEqual(changed(after, try everything(box, under: fs.mountPoint)), ["tmp"])
        XCTAssertEqual(try fs.space(), expectedSpace)

        // Every commit SQLite would keep and the ones it would drop are still in the files.
        try FileManager.default.removeItem(atPath: fs.mountPoint + "/filler")
        let view = try box.sqliteView(of: world.db)
        XCTAssertEqual(view.contentSHA256, scenario.view.contentSHA256)
        XCTAssertEqual(try box.sha256(world.db + "-wal"), scenario.files["abathur.db-wal"])
    }

    // MARK: - 2. the lock

    /// A python3 process holding BACKUP_DIR/.abathur.lock (flock) that says `ready`; sent
    /// `wait PID`, it releases the lock only once PID has the lock file open and sleeps in the
    /// lock loop (its main thread in nanosleep/clock_nanosleep: the tool sleeps there only after
    /// a failed flock), then says `released`.
    static let lockHolder = """
    import fcntl, os, sys, time
    path = sys.argv[1]
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print('ready', flush=True)
    line = sys.stdin.readline()
    if line.startswith('wait '):
        pid = int(line.split()[1])
        real = os.path.realpath(path)
        deadline = time.monotonic() + 60
        while True:
            try:
                names = os.listdir('/proc/%d/fd' % pid)
                call = open('/proc/%d/syscall' % pid).read().split()[0]
            except OSError:
                print('gone', flush=True)
                sys.exit(1)
            fds = []
            for name in names:
                try:
                    fds.append(os.readlink('/proc/%d/fd/%s' % (pid, name)))
                except OSError:
                    pass
            if real in fds and call in ('35', '230'):
                break
            if time.monotonic() > deadline:
                print('timeout', flush=True)
                sys.exit(1)
            time.sleep(0.001)  # polling for the other process's state, not a synchronisation
        fcntl.flock(fd, fcntl.LOCK_UN)
        print('released', flush=True)
    sys.stdin.read()
    """

    /// Another run holds the backup directory's lock: --fix exits 5 at once with one stderr
    /// line naming the lock, and nothing changes. With --wait, it waits while the lock is
    /// held (seen from /proc, not guessed with a sleep) and runs the fix once it is released.
    func testAHeldLockIsExit5AndNothingChangesAndWaitWaitsForIt() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "16m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        for i in 0..<4 { try world.backup(at: Self.t0 + i * Self.hour) }
        let temp = try plantStaleTemp(in: world.backups, bytes: 256 << 10)
        let free = try fs.fill(leaving: 100 << 10)
        // The stale temp file is enough for the target.
        let target = "\(free + (128 << 10))"
        let lock = world.backups + "/.abathur.lock"

        let holder = try Helper(Self.lockHolder, [lock])
        defer { holder.finish() }
        XCTAssertEqual(holder.readLine(), "ready\n")
        let before = try everything(box, under: fs.mountPoint)
        let space = try fs.space()

        let locked = try world.diskcheck(["--fix", "--target", target] + Self.quietThresholds)
        XCTAssertEqual(locked.status, 5, locked.stdout + locked.stderr)
        XCTAssertEqual(locked.stderrLines.count, 1, "one line: \(locked.stderr)")
        XCTAssertTrue(locked.stderr.contains(lock), "names the lock: \(locked.stderr)")
        XCTAssertTrue(locked.stderr.contains("--wait"), "says how to wait: \(locked.stderr)")
        XCTAssertFalse(locked.stdout.contains("step 1,"), "no step ran: \(locked.stdout)")
        let json = try world.diskcheck(["--fix", "--json", "--target", target] + Self.quietThresholds)
        XCTAssertEqual(json.status, 5, json.stderr)
        XCTAssertEqual(try document(json)["exit_code"] as? Int, 5)
        // A dry run takes no lock: it plans while the lock is held.
        let plan = try world.diskcheck(["--dry-run", "--target", target] + Self.quietThresholds)
        XCTAssertNotEqual(plan.status, 5, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("step 3, remove stale temp files: would run, about 256.0 KiB"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("plan: reaches the target"), plan.stdout)
        XCTAssertEqual(changed(before, try everything(box, under: fs.mountPoint)), [], "nothing changed")
        XCTAssertEqual(try fs.space(), space)
        XCTAssertTrue(FileManager.default.fileExists(atPath: temp))

        // --wait: the run waits in the lock loop; the holder lets go only once it sees that.
        let out = box.root + "/wait.out", err = box.root + "/wait.err"
        XCTAssertTrue(FileManager.default.createFile(atPath: out, contents: nil))
        XCTAssertTrue(FileManager.default.createFile(atPath: err, contents: nil))
        let waiting = Process()
        waiting.executableURL = URL(fileURLWithPath: Binaries.tool("abathur-diskcheck"))
        waiting.arguments = ["--fix", "--wait", "30", "--json", "--target", target] + Self.quietThresholds
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ABATHUR_") && $0.key != "JOURNAL_STREAM" }
        environment["ABATHUR_CONFIG"] = box.config
        for (key, value) in world.env { environment[key] = value }
        waiting.environment = environment
        waiting.standardInput = FileHandle.nullDevice
        waiting.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        waiting.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try waiting.run()
        holder.send("wait \(waiting.processIdentifier)")
        XCTAssertEqual(holder.readLine(), "released\n", "the run was seen waiting for the lock")
        waiting.waitUntilExit()
        let waited = Run(status: waiting.terminationStatus, stdout: try String(contentsOfFile: out, encoding: .utf8),
                         stderr: try String(contentsOfFile: err, encoding: .utf8), stdoutData: try Data(contentsOf: URL(fileURLWithPath: out)))
        let result = try world.result(waited)
        // The level after the fix (the next backup does not fit the little room left: 1).
        let verdict = try XCTUnwrap(result["verdict"] as? String)
        XCTAssertEqual(waited.status, ["ok": 0, "warning": 1, "critical": 6][verdict], "\(verdict): \(waited.stderr)")
        let steps = try steps(result)
        XCTAssertEqual(statuses(steps), ["skipped", "skipped", "done", "not needed", "not needed", "not needed"], "\(steps)")
        XCTAssertEqual(steps[2]["removed"] as? [String], [temp])
        XCTAssertFalse(FileManager.default.fileExists(atPath: temp))
    }

    // MARK: - 3. the units around the VACUUM

    /// A demo database with free pages (audit and checkpoints emptied), on a tmpfs with room,
    /// and no backup directory (step 5 has nothing to do).
    func vacuumWorld(_ box: Sandbox) throws -> (DiskWorld, SmallFilesystem) {
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "32m")
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        try world.sql("DELETE FROM audit; DELETE FROM checkpoints")
        XCTAssertNotEqual(try box.query(world.db, "PRAGMA freelist_count"), "0")
        return (world, fs)
    }

    /// --no-services: the VACUUM runs and reclaims every free page, and systemctl is never
    /// called though units are configured (the dry run says so too).
    func testNoServicesVacuumsWithoutSystemctl() throws {
        let box = try Sandbox()
        let (world, fs) = try vacuumWorld(box)
        defer { fs.unmount() }
        let systemctl = try fakeSystemctl(box)
        let mainBefore = try XCTUnwrap(FileBlocks(world.db)).size
        let unreachable = "\(try fs.space().totalBytes)"

        let plan = try world.diskcheck(["--dry-run", "--no-services", "--target", unreachable] + Self.quietThresholds, env: systemctl.env)
        XCTAssertTrue(plan.stdout.contains("step 6, vacuum: would run, about "), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("would run VACUUM with no units to stop"), plan.stdout)

        let run = try world.diskcheck(["--fix", "--no-services", "--target", unreachable, "--json"] + Self.quietThresholds, env: systemctl.env)
        XCTAssertEqual(run.status, 0, run.stderr)
        let steps = try steps(try world.result(run))
        XCTAssertEqual(steps.count, 6, "\(steps)")
        let vacuum = try XCTUnwrap(steps.last)
        XCTAssertEqual(vacuum["status"] as? String, "done", "\(vacuum)")
        XCTAssertTrue((vacuum["detail"] as? String ?? "").hasPrefix("VACUUM "), "\(vacuum)")
        XCTAssertGreaterThan(vacuum["freed_bytes"] as? Int64 ?? 0, 0, "\(vacuum)")
        XCTAssertEqual(systemctlLog(systemctl.log), "", "systemctl was not called")
        XCTAssertFalse(FileManager.default.fileExists(atPath: systemctl.log))
        XCTAssertEqual(try box.query(world.db, "PRAGMA freelist_count"), "0", "VACUUM reclaimed the free pages")
        XCTAssertLessThan(try XCTUnwrap(FileBlocks(world.db)).size, mainBefore)
        XCTAssertEqual(try box.query(world.db, "PRAGMA integrity_check"), "ok")
        XCTAssertEqual(try box.query(world.db, "SELECT count(*) FROM tasks"), "300")
    }

    /// A process holding the database open (an idle python3 sqlite3 connection): the units are
    /// stopped, the holder is still there, so the VACUUM is "refused" naming its pid, the
    /// database is untouched, and the units are started again.
    func testAProcessHoldingTheDatabaseMakesTheVacuumRefusedAndTheUnitsStartAgain() throws {
        let box = try Sandbox()
        let (world, fs) = try vacuumWorld(box)
        defer { fs.unmount() }
        let systemctl = try fakeSystemctl(box)
        let freelist = try box.query(world.db, "PRAGMA freelist_count")

        let holder = try Helper("""
        import sqlite3, sys
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        n = c.execute('SELECT count(*) FROM tasks').fetchone()[0]
        print('ready', n, flush=True)
        sys.stdin.read()
        """, [world.db])
        defer { holder.finish() }
        XCTAssertEqual(holder.readLine(), "ready 300\n")
        let database = try databaseFiles(world)

        let run = try world.diskcheck(["--fix", "--target", "\(try fs.space().totalBytes)", "--json"] + Self.quietThresholds,
                                      env: systemctl.env)
        XCTAssertEqual(run.status, 0, run.stderr)
        let steps = try steps(try world.result(run))
        XCTAssertEqual(steps.count, 6, "\(steps)")
        let vacuum = try XCTUnwrap(steps.last)
        XCTAssertEqual(vacuum["status"] as? String, "refused", "\(vacuum)")
        let detail = vacuum["detail"] as? String ?? ""
        XCTAssertTrue(detail.contains("pid \(holder.pid) "), "the holder named: \(detail)")
        XCTAssertNil(vacuum["freed_bytes"], "\(vacuum)")
        XCTAssertEqual(systemctlLog(systemctl.log), "stop -- abathur-api abathur-workers\nstart -- abathur-api abathur-workers\n",
                       "stopped, and started again")
        XCTAssertEqual(try databaseFiles(world), database, "db, -wal and -shm byte-identical")
        XCTAssertEqual(try box.query(world.db, "PRAGMA freelist_count"), freelist, "no VACUUM ran")
        holder.finish()
        XCTAssertEqual(try box.query(world.db, "PRAGMA freelist_count"), freelist)
    }

    // MARK: - 4. incremental_vacuum

    /// A database made with auto_vacuum=INCREMENTAL before its first table, with many freed
    /// pages: the report's method is incremental_vacuum, and --fix runs it: the freelist goes
    /// to 0 and the file shrinks.
    func testIncrementalAutoVacuumGetsIncrementalVacuum() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "32m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        let made = try Sandbox.execute("/usr/bin/python3", ["-c", """
        import sqlite3, sys
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute('PRAGMA auto_vacuum=INCREMENTAL')
        c.execute('PRAGMA journal_mode=WAL')
        c.execute('CREATE TABLE blobs(id INTEGER PRIMARY KEY, body BLOB NOT NULL)')
        c.execute('BEGIN')
        for i in range(800):
            c.execute('INSERT INTO blobs(body) VALUES (randomblob(3000))')
        c.execute('COMMIT')
        c.execute('DELETE FROM blobs WHERE id > 100')
        c.close()
        """, world.db])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(try box.query(world.db, "PRAGMA auto_vacuum"), "2", "incremental")
        let freelist = try XCTUnwrap(Int64(try box.query(world.db, "PRAGMA freelist_count")))
        XCTAssertGreaterThan(freelist, 500)
        let pageSize = try XCTUnwrap(Int64(try box.query(world.db, "PRAGMA page_size")))
        let pages = try XCTUnwrap(Int64(try box.query(world.db, "PRAGMA page_count")))
        let mainBefore = try XCTUnwrap(FileBlocks(world.db)).size
        XCTAssertEqual(mainBefore, pages * pageSize)
        let systemctl = try fakeSystemctl(box)

        let report = try world.diskcheck(["--json"] + Self.quietThresholds, env: systemctl.env)
        XCTAssertEqual(report.status, 0, report.stderr)
        let reportObject = try XCTUnwrap(try world.result(report)["report"] as? [String: Any])
        let vacuumReport = try XCTUnwrap(reportObject["vacuum"] as? [String: Any], "\(reportObject.keys.sorted())")
        XCTAssertEqual(vacuumReport["method"] as? String, "incremental_vacuum", "\(vacuumReport)")
        XCTAssertEqual(vacuumReport["reclaimable_bytes"] as? Int64, freelist * pageSize, "\(vacuumReport)")
        let database = try XCTUnwrap(reportObject["database"] as? [String: Any])
        XCTAssertEqual(database["freelist_pages"] as? Int64, freelist, "\(database)")
        XCTAssertEqual(database["auto_vacuum"] as? String, "incremental", "\(database)")
        let human = try world.diskcheck(Self.quietThresholds, env: systemctl.env)
        XCTAssertTrue(human.stdout.contains("vacuum: PRAGMA incremental_vacuum would reclaim about "), human.stdout)

        let plan = try world.diskcheck(["--dry-run", "--target", "\(try fs.space().totalBytes)"] + Self.quietThresholds, env: systemctl.env)
        XCTAssertTrue(plan.stdout.contains("step 6, vacuum: would run, about "), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("would run PRAGMA incremental_vacuum with abathur-api abathur-workers stopped"), plan.stdout)

        let free = try fs.space().freeBytes
        let run = try world.diskcheck(["--fix", "--target", "\(try fs.space().totalBytes)", "--json"] + Self.quietThresholds,
                                      env: systemctl.env)
        let freeAfter = try fs.space().freeBytes
        XCTAssertEqual(run.status, 0, run.stderr)
        let steps = try steps(try world.result(run))
        XCTAssertEqual(steps.count, 6, "\(steps)")
        let vacuum = try XCTUnwrap(steps.last)
        XCTAssertEqual(vacuum["status"] as? String, "done", "\(vacuum)")
        XCTAssertTrue((vacuum["detail"] as? String ?? "").hasPrefix("PRAGMA incremental_vacuum "), "\(vacuum)")
        XCTAssertEqual(vacuum["freed_bytes"] as? Int64, freeAfter - free, "what the filesystem shows: \(vacuum)")
        XCTAssertGreaterThanOrEqual(freeAfter - free, freelist * pageSize)
        XCTAssertEqual(systemctlLog(systemctl.log), "stop -- abathur-api abathur-workers\nstart -- abathur-api abathur-workers\n")
        XCTAssertEqual(try box.query(world.db, "PRAGMA freelist_count"), "0", "incremental_vacuum freed every free page")
        XCTAssertEqual(try box.query(world.db, "PRAGMA auto_vacuum"), "2", "still incremental")
        let mainAfter = try XCTUnwrap(FileBlocks(world.db)).size
        XCTAssertLessThanOrEqual(mainAfter, mainBefore - freelist * pageSize, "the file shrank by the free pages")
        XCTAssertEqual(FileBlocks(world.db + "-wal")?.size ?? 0, 0, "checkpointed")
        XCTAssertEqual(try box.query(world.db, "PRAGMA integrity_check"), "ok")
        XCTAssertEqual(try box.query(world.db, "SELECT count(*) FROM blobs"), "100")
    }

    // MARK: - 5. --dry-run changes nothing

    /// On a filesystem filled to the last block (critical), with a reserve, a hot -wal, free
    /// pages, backups and a stale temp file: --dry-run exits 6 (the level now), prints its plan
    /// lines, and changes nothing, the reserve included; at warning and ok levels it exits 1
    /// and 0, and changes nothing either.
    func testDryRunExitsWithTheLevelNowAndChangesNothing() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "16m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        try world.sql("DELETE FROM audit")
        try Data("reserve = 256KiB\ndisk_warn = 95%\ndisk_crit = 99%\ndisk_crit_free =\n".utf8).write(to: URL(fileURLWithPath: box.config))
        let reserve = world.liveDir + "/.abathur.db.abathur-reserve"
        XCTAssertEqual(try world.diskcheck([]).status, 0)
        XCTAssertEqual(FileBlocks(reserve)?.allocated, 256 << 10)
        for i in 0..<4 { try world.backup(at: Self.t0 + i * Self.hour) }
        XCTAssertEqual(try box.demo(["write", world.db, "--commits", "20", "--crash"]).status, 0)
        XCTAssertGreaterThan(FileBlocks(world.db + "-wal")?.size ?? 0, 0)
        _ = try plantStaleTemp(in: world.backups, bytes: 64 << 10)

        // Not yet full: ok, then warning.
        for (thresholds, status, verdict) in [(["--warn", "99%", "--crit", "99.5%"], Int32(0), "ok"), (["--warn", "1%", "--crit", "99.5%"], 1, "warning")] {
            let before = try everything(box, under: fs.mountPoint)
            let space = try fs.space()
            let plan = try world.diskcheck(["--dry-run"] + thresholds)
            XCTAssertEqual(plan.status, status, plan.stdout + plan.stderr)
            XCTAssertTrue(plan.stdout.contains("\nverdict: \(verdict)\n"), plan.stdout)
            XCTAssertTrue(plan.stdout.contains("\nplan: until every filesystem is "), plan.stdout)
            XCTAssertEqual(changed(before, try everything(box, under: fs.mountPoint)), [], "\(verdict): a dry run changes nothing")
            XCTAssertEqual(try fs.space(), space)
        }

        try fs.fill(leaving: 0)
        let before = try everything(box, under: fs.mountPoint)
        let space = try fs.space()
        XCTAssertNotNil(before["live/.abathur.db.abathur-reserve"], "\(before.keys.sorted())")
        let plan = try world.diskcheck(["--dry-run"])
        XCTAssertEqual(plan.status, 6, "critical now: \(plan.stderr)")
        let lines = plan.stdout.split(separator: "\n").map(String.init)
        let planLines = lines.filter { $0.hasPrefix("plan: ") }
        XCTAssertEqual(planLines.count, 2, plan.stdout)
        XCTAssertTrue(planLines.first?.hasPrefix("plan: until every filesystem is ") == true, "\(planLines)")
        XCTAssertTrue(planLines.last?.hasPrefix("plan: reaches the target (estimated ") == true || planLines.last?.hasPrefix("plan: does NOT reach the target (estimated ") == true,
                      "\(planLines)")
        XCTAssertTrue(plan.stdout.contains("step 1, release the reserve: would run, about 256.0 KiB: would delete \(reserve), 256.0 KiB"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("step 2, checkpoint (TRUNCATE): would run, about "), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("\nverdict: critical\n"), plan.stdout)
        XCTAssertFalse(lines.contains { $0.hasPrefix("after: ") || $0.hasPrefix("freed ") }, plan.stdout)
        XCTAssertEqual(changed(before, try everything(box, under: fs.mountPoint)), [], "a dry run changes nothing, the reserve included")
        XCTAssertEqual(try fs.space(), space)

        let json = try world.diskcheck(["--dry-run", "--json"])
        XCTAssertEqual(json.status, 6, json.stderr)
        let document = try document(json)
        XCTAssertEqual(document["command"] as? String, "dry-run")
        XCTAssertEqual(document["exit_code"] as? Int, 6)
        let result = try XCTUnwrap(document["result"] as? [String: Any])
        XCTAssertEqual((result["fix"] as? [String: Any])?["dry_run"] as? Bool, true)
        XCTAssertNil(result["after"], "a dry run has no after")
        XCTAssertEqual(result["verdict"] as? String, "critical")
        XCTAssertEqual(statuses(try steps(result)).first, "would run")
        XCTAssertEqual(changed(before, try everything(box, under: fs.mountPoint)), [], "a dry run changes nothing, the reserve included")
        XCTAssertEqual(try fs.space(), space)
    }
}
