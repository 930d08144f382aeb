import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-diskcheck --fix` and `--dry-run` on small real filesystems filled to the last
/// blocks (issue 12): the steps in the documented order, stopping at the target; backups
/// pruned oldest first and only as many as needed, never below the floor, never a symlink, a
/// foreign file or (without --include-manual) a manual backup; VACUUM refused without room,
/// the database byte-identical; the reserve released first, which is what lets a checkpoint
/// run; a checkpoint blocked by a reader reported busy with the reader's pid.
final class DiskcheckFixTests: DiskcheckTestCase {
    static let exitCodes = ["ok": Int32(0), "warning": 1, "critical": 6]

    // MARK: - plumbing

    func fixOf(_ result: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(result["fix"] as? [String: Any], "\(result.keys.sorted())", file: file, line: line)
    }

    func stepsOf(_ fix: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let steps = try XCTUnwrap(fix["steps"] as? [[String: Any]], "\(fix)", file: file, line: line)
        XCTAssertEqual(steps.map { $0["name"] as? String }, Self.stepNames, "every step, in the documented order", file: file, line: line)
        XCTAssertEqual(steps.map { $0["number"] as? Int }, Array(1...6), file: file, line: line)
        return steps
    }

    /// The exit status is the verdict's (0, 1, 6).
    func assertExitMatchesVerdict(_ run: Run, _ result: [String: Any], file: StaticString = #filePath, line: UInt = #line) {
        let verdict = result["verdict"] as? String ?? "?"
        XCTAssertEqual(run.status, Self.exitCodes[verdict], "exit \(run.status) for verdict \(verdict): \(run.stderr)", file: file, line: line)
    }

    func allocated(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> Int64 {
        try XCTUnwrap(FileBlocks(path), path, file: file, line: line).allocated
    }

    /// Every file in the places a fix may touch, by SHA-256: "changes nothing" made checkable.
    func everything(_ world: DiskWorld, also: [String] = []) throws -> [String: [String: String]] {
        var all: [String: [String: String]] = [:]
        for dir in [world.liveDir, world.backups, world.backups + "/safety", world.tmp] + also {
            all[dir] = try world.box.fingerprint(dir)
        }
        return all
    }

    // MARK: - the order, and stopping at the target

    /// A stale temp file alone gives back what the target asks: it is removed (step 3), the
    /// later steps are "not needed", and no backup is touched. The dry run before it plans
    /// exactly that, with numbers, and changes nothing.
    func testStaleTempFilesAloneSufficeAndLaterStepsAreNotNeeded() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "16m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        for i in 0..<3 { try world.backup(at: Self.t0 + i * Self.hour) }
        let temp = try plantStaleTemp(in: world.backups, bytes: 400 << 10)
        let tempBytes = try allocated(temp)
        XCTAssertEqual(tempBytes, 400 << 10)
        let free = try fs.fill(leaving: 200 << 10)
        // 200 KiB short: the temp file's 400 KiB is more than enough.
        let target = "\(free + (200 << 10))"
        let backups = try box.fingerprint(world.backups)
        let live = try box.fingerprint(world.liveDir)

        let plan = try world.diskcheck(["--dry-run", "--target", target] + Self.quietThresholds)
        XCTAssertTrue(plan.stdout.contains("step 3, remove stale temp files: would run, about 400.0 KiB: would remove 1 stale temp file(s), 400.0 KiB"), plan.stdout)
        for number in 4...6 {
            XCTAssertTrue(plan.stdout.contains("step \(number), \(Self.stepNames[number - 1]): not needed"), plan.stdout)
        }
        XCTAssertTrue(plan.stdout.contains("plan: reaches the target (estimated 400.0 KiB)"), plan.stdout)
        XCTAssertEqual(try fs.space().freeBytes, free, "a dry run frees nothing")
        XCTAssertEqual(try box.fingerprint(world.backups), backups, "a dry run removes nothing")
        XCTAssertEqual(try box.fingerprint(world.liveDir), live, "a dry run takes no lock and writes nothing")

        let run = try world.diskcheck(["--fix", "--target", target, "--json"] + Self.quietThresholds)
        let result = try world.result(run)
        let fix = try fixOf(result)
        let steps = try stepsOf(fix)
        XCTAssertEqual(statuses(steps), ["skipped", "skipped", "done", "not needed", "not needed", "not needed"], "\(steps)")
        XCTAssertEqual(steps[2]["removed"] as? [String], [temp])
        XCTAssertEqual(steps[2]["freed_bytes"] as? Int64, tempBytes, "measured: what the file held")
        XCTAssertEqual(fix["freed_bytes"] as? Int64, tempBytes)
        XCTAssertEqual(fix["reached"] as? Bool, true)
        XCTAssertEqual(try fs.space().freeBytes, free + tempBytes)
        assertExitMatchesVerdict(run, result)
        XCTAssertFalse(FileManager.default.fileExists(atPath: temp))
        var expected = backups
        expected[(temp as NSString).lastPathComponent] = nil
        XCTAssertEqual(try box.fingerprint(world.backups), expected, "every backup and manifest byte-identical")
        XCTAssertEqual(try databaseFiles(world), [live["abathur.db"], nil, nil])
    }

    /// Something to free for steps 1, 3, 4 and 5 at once, and a target that needs the reserve,
    /// the stale temp file and one safety copy: they go in that order, the oldest safety copy
    /// only, and the backups are not needed. The dry run plans the same, with numbers.
    func testStepsRunInOrderAndStopOnceTheTargetIsMet() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "24m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        try Data("reserve = 256KiB\ndisk_warn = 95%\ndisk_crit = 99%\ndisk_crit_free =\n".utf8).write(to: URL(fileURLWithPath: box.config))
        let reserve = world.liveDir + "/.abathur.db.abathur-reserve"
        XCTAssertEqual(try world.diskcheck([]).status, 0)
        XCTAssertEqual(try allocated(reserve), 256 << 10)
        // A backup, three restores of it (three safety copies), three more backups.
        try world.backup(at: Self.t0)
        for i in 1...3 {
            let restore = try box.run("abathur-restore", [], env: world.env.merging(
                ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": "", "ABATHUR_NOW": "\(Self.t0 + i * Self.hour)"]) { $1 })
            XCTAssertEqual(restore.status, 0, restore.stderr)
        }
        for i in 4...6 { try world.backup(at: Self.t0 + i * Self.hour) }
        let safety = try FileManager.default.contentsOfDirectory(atPath: world.backups + "/safety").sorted()
            .map { world.backups + "/safety/" + $0 }
        XCTAssertEqual(safety.count, 3, "\(safety)")
        let oldestSafetyBytes = try FileManager.default.contentsOfDirectory(atPath: safety[0])
            .map { try allocated(safety[0] + "/" + $0) }.reduce(0, +)
        XCTAssertEqual(try allocated(reserve), 256 << 10, "restores and backups leave the reserve alone")
        let temp = try plantStaleTemp(in: world.backups, bytes: 128 << 10)
        let free = try fs.fill(leaving: 100 << 10)
        let target = "\(free + (256 << 10) + (128 << 10) + oldestSafetyBytes / 2)"
        // Safety copies beyond one and older than an hour may go (never the newest).
        let env = ["ABATHUR_SAFETY_KEEP": "1", "ABATHUR_SAFETY_MAX_AGE": "1h", "ABATHUR_NOW": "\(Self.t0 + 10 * Self.hour)"]
        let backups = try box.fingerprint(world.backups)
        let live = try box.fingerprint(world.liveDir)

        let plan = try world.diskcheck(["--dry-run", "--target", target], env: env)
        let planSteps = plan.stdout.split(separator: "\n").filter { $0.hasPrefix("step ") }.map(String.init)
        XCTAssertEqual(planSteps.count, 6, plan.stdout)
        XCTAssertTrue(planSteps[0].hasPrefix("step 1, release the reserve: would run, about 256.0 KiB: would delete \(reserve), 256.0 KiB"), planSteps[0])
        XCTAssertTrue(planSteps[1].hasPrefix("step 2, checkpoint (TRUNCATE): skipped: "), planSteps[1])
        XCTAssertTrue(planSteps[2].hasPrefix("step 3, remove stale temp files: would run, about 128.0 KiB: "), planSteps[2])
        XCTAssertTrue(planSteps[3].hasPrefix("step 4, remove old safety copies and aside directories: would run, about \(Bytes(oldestSafetyBytes)): would remove 1 of 2 removable, oldest first"), planSteps[3])
        XCTAssertTrue(planSteps[3].hasSuffix(": " + (safety[0] as NSString).lastPathComponent), planSteps[3])
        XCTAssertTrue(planSteps[4].hasPrefix("step 5, prune backups down to the floor: not needed"), planSteps[4])
        XCTAssertTrue(planSteps[5].hasPrefix("step 6, vacuum: not needed"), planSteps[5])
        XCTAssertEqual(try box.fingerprint(world.backups), backups, "a dry run removes nothing")
        XCTAssertEqual(try box.fingerprint(world.liveDir), live, "a dry run removes nothing")
        XCTAssertEqual(try fs.space().freeBytes, free)

        let run = try world.diskcheck(["--fix", "--target", target, "--json"], env: env)
        let result = try world.result(run)
        let fix = try fixOf(result)
        let steps = try stepsOf(fix)
        XCTAssertEqual(statuses(steps), ["done", "skipped", "done", "done", "not needed", "not needed"], "\(steps)")
        XCTAssertEqual(steps.map { $0["removed"] as? [String] ?? [] }, [[reserve], [], [temp], [safety[0]], [], []])
        XCTAssertEqual(steps.map { $0["freed_bytes"] as? Int64 }, [256 << 10, nil, 128 << 10, oldestSafetyBytes, nil, nil])
        XCTAssertEqual(fix["reached"] as? Bool, true)
        assertExitMatchesVerdict(run, result)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: world.backups + "/safety").sorted().map { world.backups + "/safety/" + $0 },
                       Array(safety[1...]), "the newer safety copies stay")
        let after = try box.fingerprint(world.backups)
        for (name, hash) in backups where name.hasSuffix(".db.gz") || name.hasSuffix(".json") {
            XCTAssertEqual(after[name], hash, "\(name) untouched")
        }
    }

    /// Backups go oldest first and only as many as the target needs; pushed further, never
    /// below keep_min_verified, never a symlink named like a backup, a foreign file with a
    /// similar name, a .db.gz without a manifest, or a manual backup; with --include-manual the
    /// manual one may go, the floor still holds. The VACUUM that does not fit is refused with
    /// a plan, no unit is stopped, and the database, -wal and -shm stay byte-identical.
    func testPruningOldestFirstToTheTargetAndNeverBelowTheFloorOrForeign() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "24m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        // Free pages for a VACUUM to reclaim.
        try world.sql("DELETE FROM audit; DELETE FROM checkpoints")
        var scheduled: [String] = []
        for i in 0..<4 { scheduled.append(try world.backup(at: Self.t0 + i * Self.hour)) }
        let manual = try world.backup(at: Self.t0 + 4 * Self.hour, ["--manual"])
        XCTAssertTrue(manual.hasPrefix("manual_"), manual)
        for i in 5..<7 { scheduled.append(try world.backup(at: Self.t0 + i * Self.hour)) }

        // Things that look like backups and are not ours to remove, all older than ours.
        let elsewhere = box.root + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        let first = world.backups + "/" + scheduled[0]
        try FileManager.default.copyItem(atPath: first, toPath: elsewhere + "/real.db.gz")
        let link = "abathur_2026-01-01_00-00-00.db.gz"
        try FileManager.default.createSymbolicLink(atPath: world.backups + "/" + link, withDestinationPath: elsewhere + "/real.db.gz")
        try FileManager.default.copyItem(atPath: first + ".json", toPath: world.backups + "/" + link + ".json")
        try FileManager.default.copyItem(atPath: first, toPath: world.backups + "/abathur_2026-01-01_00-00-00.db.gz.bak")
        try FileManager.default.copyItem(atPath: first, toPath: world.backups + "/abathur_2026-01-02_00-00-00.db.gz")
        let foreign = [link, link + ".json", "abathur_2026-01-01_00-00-00.db.gz.bak", "abathur_2026-01-02_00-00-00.db.gz"]

        // A -wal and a -shm (an empty WAL: nothing to checkpoint) that must stay as they are.
        try DyingWriter.run(world.db, "c.execute('SELECT count(*) FROM tasks').fetchone()\nc.execute('PRAGMA wal_checkpoint(TRUNCATE)')")
        let database = try databaseFiles(world)
        XCTAssertFalse(database.contains(nil), "db, -wal and -shm all there: \(database)")

        let free = try fs.fill(leaving: 300 << 10)
        let sizes = try scheduled.map { try allocated(world.backups + "/" + $0) }
        let manifests = try scheduled.map { try allocated(world.backups + "/" + $0 + ".json") }
        // Short by the oldest backup and half the next one: exactly two must go.
        let target = "\(free + sizes[0] + manifests[0] + sizes[1] / 2)"
        let backups = try box.fingerprint(world.backups)
        let elsewhereBefore = try box.fingerprint(elsewhere)
        let systemctl = try fakeSystemctl(box)
        let before = try everything(world, also: [elsewhere])

        let plan = try world.diskcheck(["--dry-run", "--target", target] + Self.quietThresholds, env: systemctl.env)
        XCTAssertTrue(plan.stdout.contains("step 5, prune backups down to the floor: would run, about \(Bytes(sizes[0] + sizes[1])): would remove 2 of 4 removable, oldest first, \(Bytes(sizes[0] + sizes[1])): \(scheduled[0]), \(scheduled[1]) (floor: keep_min_verified=2; manual backups are never removed without --include-manual)"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("step 6, vacuum: not needed"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("plan: reaches the target (estimated \(Bytes(sizes[0] + sizes[1])))"), plan.stdout)
        XCTAssertEqual(try everything(world, also: [elsewhere]), before, "a dry run changes nothing")
        let unreachablePlan = try world.diskcheck(["--dry-run", "--include-manual", "--target", "\(try fs.space().totalBytes)"] + Self.quietThresholds,
                                                  env: systemctl.env)
        XCTAssertTrue(unreachablePlan.stdout.contains("would remove 5 of 5 removable, oldest first"), unreachablePlan.stdout)
        XCTAssertTrue(unreachablePlan.stdout.contains("step 6, vacuum: refused: "), unreachablePlan.stdout)
        XCTAssertTrue(unreachablePlan.stdout.contains("\nvacuum plan: "), unreachablePlan.stdout)
        XCTAssertTrue(unreachablePlan.stdout.contains("plan: does NOT reach the target"), unreachablePlan.stdout)
        XCTAssertEqual(try everything(world, also: [elsewhere]), before, "a dry run changes nothing")
        XCTAssertEqual(try databaseFiles(world), database)
        XCTAssertEqual(try fs.space().freeBytes, free)

        let run = try world.diskcheck(["--fix", "--target", target, "--json"] + Self.quietThresholds, env: systemctl.env)
        let result = try world.result(run)
        let fix = try fixOf(result)
        let steps = try stepsOf(fix)
        XCTAssertEqual(statuses(steps), ["skipped", "skipped", "skipped", "skipped", "done", "not needed"], "\(steps)")
        XCTAssertEqual(steps[4]["removed"] as? [String], [scheduled[0], scheduled[1]].map { world.backups + "/" + $0 }, "oldest first, two")
        let freed = sizes[0] + manifests[0] + sizes[1] + manifests[1]
        XCTAssertEqual(steps[4]["freed_bytes"] as? Int64, freed, "the two backups and their manifests")
        XCTAssertEqual(fix["reached"] as? Bool, true)
        assertExitMatchesVerdict(run, result)
        var expected = backups
        for name in scheduled[0...1] { expected[name] = nil; expected[name + ".json"] = nil }
        expected["SHA256SUMS"] = nil
        XCTAssertEqual(try box.fingerprint(world.backups).filter { $0.key != "SHA256SUMS" }, expected)
        let sums = try String(contentsOfFile: world.backups + "/SHA256SUMS", encoding: .utf8)
        XCTAssertFalse(sums.contains(scheduled[0]) || sums.contains(scheduled[1]), "SHA256SUMS follows: \(sums)")
        XCTAssertEqual(try databaseFiles(world), database)

        // As far as it goes: down to the floor, and no further.
        let unreachable = "\(try fs.space().totalBytes)"
        let deeper = try world.diskcheck(["--fix", "--target", unreachable, "--json"] + Self.quietThresholds, env: systemctl.env)
        let deeperResult = try world.result(deeper)
        let deeperFix = try fixOf(deeperResult)
        let deeperSteps = try stepsOf(deeperFix)
        XCTAssertEqual(statuses(deeperSteps), ["skipped", "skipped", "skipped", "skipped", "done", "refused"], "\(deeperSteps)")
        XCTAssertEqual(deeperSteps[4]["removed"] as? [String], [scheduled[2], scheduled[3]].map { world.backups + "/" + $0 })
        XCTAssertEqual(deeperFix["reached"] as? Bool, false)
        assertExitMatchesVerdict(deeper, deeperResult)
        XCTAssertTrue((deeperSteps[5]["detail"] as? String ?? "").contains("does not fit; the database was not opened"), "\(deeperSteps[5])")
        let vacuumPlan = try XCTUnwrap(deeperFix["vacuum_plan"] as? [String])
        XCTAssertEqual(vacuumPlan.first, "systemctl stop abathur-api abathur-workers", "\(vacuumPlan)")
        XCTAssertTrue(vacuumPlan.contains { $0.contains("VACUUM INTO") }, "\(vacuumPlan)")
        XCTAssertTrue(vacuumPlan.contains { $0.hasPrefix("abathur-restore ") }, "\(vacuumPlan)")
        XCTAssertEqual(try databaseFiles(world), database, "db, -wal and -shm byte-identical")
        for name in [manual, scheduled[4], scheduled[5]] + foreign {
            XCTAssertEqual(try box.fingerprint(world.backups)[name], backups[name], "\(name) untouched")
        }
        XCTAssertEqual(try world.backupsLeft(), Set([manual, scheduled[4], scheduled[5]]).union(foreign.filter { $0.hasSuffix(".db.gz") }))
        let human = try world.diskcheck(["--fix", "--target", unreachable] + Self.quietThresholds, env: systemctl.env)
        XCTAssertTrue(human.stdout.contains("step 5, prune backups down to the floor: skipped: every backup is within the floor"), human.stdout)
        XCTAssertTrue(human.stdout.contains("step 6, vacuum: refused: "), human.stdout)
        XCTAssertTrue(human.stdout.contains("\nvacuum plan: systemctl stop abathur-api abathur-workers\n"), human.stdout)
        XCTAssertTrue(human.stdout.contains("; target NOT reached"), human.stdout)

        // --include-manual: the manual backup may go, the two newest verified ones stay.
        let withManual = try world.diskcheck(["--fix", "--include-manual", "--target", unreachable, "--json"] + Self.quietThresholds,
                                             env: systemctl.env)
        let manualSteps = try stepsOf(try fixOf(try world.result(withManual)))
        XCTAssertEqual(manualSteps[4]["removed"] as? [String], [world.backups + "/" + manual], "\(manualSteps[4])")
        XCTAssertEqual(try world.backupsLeft(), Set([scheduled[4], scheduled[5]]).union(foreign.filter { $0.hasSuffix(".db.gz") }))
        let again = try world.diskcheck(["--fix", "--include-manual", "--target", unreachable, "--json"] + Self.quietThresholds,
                                        env: systemctl.env)
        XCTAssertEqual(try stepsOf(try fixOf(try world.result(again)))[4]["status"] as? String, "skipped", "never below the floor")
        XCTAssertEqual(try world.backupsLeft(), Set([scheduled[4], scheduled[5]]).union(foreign.filter { $0.hasSuffix(".db.gz") }))

        let now = try box.fingerprint(world.backups)
        for name in [scheduled[4], scheduled[5]] + foreign { XCTAssertEqual(now[name], backups[name], "\(name) byte-identical") }
        XCTAssertEqual(try box.fingerprint(elsewhere), elsewhereBefore, "the symlink's target untouched")
        XCTAssertEqual(try databaseFiles(world), database, "db, -wal and -shm byte-identical")
        XCTAssertEqual((try? String(contentsOfFile: systemctl.log, encoding: .utf8)) ?? "", "", "no unit stopped for a refused VACUUM")

        // With room (the filler gone), the same VACUUM runs, the units stopped around it.
        try FileManager.default.removeItem(atPath: fs.mountPoint + "/filler")
        let freelist = try box.query(world.db, "PRAGMA freelist_count")
        XCTAssertNotEqual(freelist, "0")
        let vacuum = try world.diskcheck(["--fix", "--target", unreachable, "--json"] + Self.quietThresholds, env: systemctl.env)
        let vacuumStep = try stepsOf(try fixOf(try world.result(vacuum)))[5]
        XCTAssertEqual(vacuumStep["status"] as? String, "done", "\(vacuumStep)")
        XCTAssertEqual(try String(contentsOfFile: systemctl.log, encoding: .utf8),
                       "stop -- abathur-api abathur-workers\nstart -- abathur-api abathur-workers\n")
        XCTAssertEqual(try box.query(world.db, "PRAGMA freelist_count"), "0", "VACUUM reclaimed the free pages")
        XCTAssertEqual(try world.backupsLeft(), Set([scheduled[4], scheduled[5]]).union(foreign.filter { $0.hasSuffix(".db.gz") }))
    }

    // MARK: - the reserve

    /// A hot WAL (abathur-demo write --crash) whose pages extend the database, on a tmpfs filled
    /// to its last block: the checkpoint needs room to grow the main file. Returns the world,
    /// the filesystem (to unmount) and the writer's sequence number.
    func hotWALOnAFullFilesystem(_ box: Sandbox, reserve: Bool) throws -> (DiskWorld, SmallFilesystem, Int) {
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "8m")
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        try Data(((reserve ? "reserve = 512KiB\n" : "") + "disk_warn = 95%\ndisk_crit = 99%\ndisk_crit_free =\n").utf8)
            .write(to: URL(fileURLWithPath: box.config))
        let reservePath = world.liveDir + "/.abathur.db.abathur-reserve"
        let plain = try world.diskcheck(["--json"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        if reserve {
            let upkeep = try XCTUnwrap(try world.result(plain)["reserve"] as? [String: Any])
            XCTAssertEqual(upkeep["action"] as? String, "created", "\(upkeep)")
            let blocks = try XCTUnwrap(FileBlocks(reservePath), "the plain run made the reserve")
            XCTAssertTrue(blocks.isRegular)
            XCTAssertEqual(blocks.size, 512 << 10)
            XCTAssertGreaterThanOrEqual(blocks.allocated, 512 << 10, "allocated, not sparse")
            let kept = try world.diskcheck([])
            XCTAssertTrue(kept.stdout.contains("reserve \(reservePath): 512.0 KiB, allocated"), kept.stdout)
        } else {
            XCTAssertNil(FileBlocks(reservePath))
        }
        let pagesBefore = try box.query(world.db, "PRAGMA page_count")
        let write = try box.demo(["write", world.db, "--commits", "20", "--crash"])
        XCTAssertEqual(write.status, 0, write.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: world.db + "-wal"))
        // The committed WAL makes the database longer than its main file.
        let report = try XCTUnwrap(try world.result(try world.diskcheck(["--json"]))["report"] as? [String: Any])
        let space = try XCTUnwrap(report["database"] as? [String: Any])
        let pages = try XCTUnwrap(space["page_count"] as? Int64)
        XCTAssertGreaterThan(pages, Int64(pagesBefore) ?? .max, "\(space)")
        XCTAssertGreaterThan(pages * 4096, try XCTUnwrap(space["main_bytes"] as? Int64), "\(space)")
        XCTAssertEqual(try fs.fill(leaving: 0), 0)
        return (world, fs, 20)
    }

    /// With a reserve, --fix releases it first and the checkpoint that follows succeeds; the
    /// same full filesystem without one: the checkpoint fails for want of space, claims nothing,
    /// and the WAL's commits are all still there.
    func testTheReserveIsReleasedFirstAndLetsTheCheckpointRun() throws {
        // One page more than the reserve: the checkpoint step must run.
        let target = "\((512 << 10) + 4096)"

        let box = try Sandbox()
        let (world, fs, seq) = try hotWALOnAFullFilesystem(box, reserve: true)
        defer { fs.unmount() }
        let run = try world.diskcheck(["--fix", "--target", target, "--json"])
        let result = try world.result(run)
        let fix = try fixOf(result)
        let steps = try stepsOf(fix)
        XCTAssertEqual(statuses(steps), ["done", "done", "not needed", "not needed", "not needed", "not needed"], "\(steps)")
        XCTAssertEqual(steps[0]["removed"] as? [String], [world.liveDir + "/.abathur.db.abathur-reserve"])
        XCTAssertEqual(steps[0]["freed_bytes"] as? Int64, 512 << 10)
        XCTAssertGreaterThan(steps[1]["freed_bytes"] as? Int64 ?? 0, 0, "\(steps[1])")
        XCTAssertEqual(fix["reached"] as? Bool, true)
        assertExitMatchesVerdict(run, result)
        XCTAssertNil(FileBlocks(world.liveDir + "/.abathur.db.abathur-reserve"))
        XCTAssertEqual(FileBlocks(world.db + "-wal")?.size, 0, "checkpointed and truncated")
        let check = try box.demo(["check", world.db, "--min-seq", "\(seq)"])
        XCTAssertEqual(check.status, 0, check.stderr)
        // The next plain run makes the reserve again, now that there is room, and says so.
        let again = try world.diskcheck([])
        XCTAssertTrue(again.stdout.contains("reserve: \(world.liveDir)/.abathur.db.abathur-reserve: created the 512.0 KiB reserve"), again.stdout)
        XCTAssertEqual(FileBlocks(world.liveDir + "/.abathur.db.abathur-reserve")?.allocated, 512 << 10)

        // No reserve: the same checkpoint fails on the full filesystem.
        let bare = try Sandbox()
        let (bareWorld, bareFS, bareSeq) = try hotWALOnAFullFilesystem(bare, reserve: false)
        defer { bareFS.unmount() }
        let wal = try bare.sha256(bareWorld.db + "-wal")
        let failed = try bareWorld.diskcheck(["--fix", "--target", target, "--json"])
        let failedResult = try bareWorld.result(failed)
        let failedFix = try fixOf(failedResult)
        let failedSteps = try stepsOf(failedFix)
        XCTAssertEqual(statuses(failedSteps).prefix(2), ["skipped", "failed"], "\(failedSteps)")
        XCTAssertTrue((failedSteps[1]["detail"] as? String ?? "").contains("disk is full"), "\(failedSteps[1])")
        XCTAssertEqual(failedSteps[1]["freed_bytes"] as? Int64, 0, "claims nothing it did not free")
        XCTAssertEqual(failedFix["reached"] as? Bool, false)
        XCTAssertEqual(try bare.sha256(bareWorld.db + "-wal"), wal, "the WAL and its commits stay")
        XCTAssertTrue(failed.stderr.contains("checkpoint failed"), failed.stderr)
        assertExitMatchesVerdict(failed, failedResult)
        // Room again: every commit is there.
        try FileManager.default.removeItem(atPath: bareFS.mountPoint + "/filler")
        let bareCheck = try bare.demo(["check", bareWorld.db, "--min-seq", "\(bareSeq)"])
        XCTAssertEqual(bareCheck.status, 0, bareCheck.stderr)
    }

    // MARK: - busy

    /// A reader holding a read transaction blocks the TRUNCATE checkpoint: the step is "busy",
    /// names the reader's pid, and does not claim bytes it did not free.
    func testACheckpointBlockedByAReaderIsBusyAndNamesIt() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "16m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        try DyingWriter.run(world.db, """
        for i in range(30):
            c.execute("INSERT INTO state(key, value, updated_at) VALUES (?, 'x', datetime('now'))", ('hot-%d' % i,))
        """)
        let walBefore = try XCTUnwrap(FileBlocks(world.db + "-wal"))
        XCTAssertGreaterThan(walBefore.size, 0)

        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        reader.arguments = ["-c", """
        import sqlite3, sys
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute('BEGIN')
        n = c.execute('SELECT count(*) FROM state').fetchone()[0]
        print('ready', n, flush=True)
        sys.stdin.read()
        """, world.db]
        let input = Pipe(), output = Pipe()
        reader.standardInput = input
        reader.standardOutput = output
        try reader.run()
        defer {
            try? input.fileHandleForWriting.close()
            reader.waitUntilExit()
        }
        XCTAssertEqual(output.fileHandleForReading.readLine(), "ready 33\n", "the reader sees the 3 rows and the 30 hot ones")

        let freeBefore = try fs.space().freeBytes
        let run = try world.diskcheck(["--fix", "--busy-timeout", "200", "--target", "\(try fs.space().totalBytes)", "--json"]
                                      + Self.quietThresholds)
        let result = try world.result(run)
        let fix = try fixOf(result)
        let steps = try stepsOf(fix)
        let checkpoint = steps[1]
        XCTAssertEqual(checkpoint["status"] as? String, "busy", "\(checkpoint)")
        let detail = checkpoint["detail"] as? String ?? ""
        XCTAssertTrue(detail.contains("pid \(reader.processIdentifier) "), "the reader named: \(detail)")
        XCTAssertTrue(detail.contains("busy past the busy timeout (200 ms)"), detail)
        let freed = try XCTUnwrap(checkpoint["freed_bytes"] as? Int64, "\(checkpoint)")
        XCTAssertLessThanOrEqual(freed, 0, "a busy checkpoint frees nothing: \(checkpoint)")
        XCTAssertEqual(freed, try fs.space().freeBytes - freeBefore, "what it reports is what the filesystem shows")
        XCTAssertEqual(FileBlocks(world.db + "-wal")?.size, walBefore.size, "the WAL was not reset")
        XCTAssertTrue((fix["warnings"] as? [String] ?? []).contains { $0.contains("was busy: blocked by pid \(reader.processIdentifier) ") },
                      "\(fix["warnings"] ?? "")")
        XCTAssertTrue(run.stderr.contains("pid \(reader.processIdentifier) "), run.stderr)
        XCTAssertEqual(fix["reached"] as? Bool, false)
        assertExitMatchesVerdict(run, result)

        try input.fileHandleForWriting.close()
        reader.waitUntilExit()
        XCTAssertEqual(try box.query(world.db, "SELECT count(*) FROM state WHERE key LIKE 'hot-%'"), "30", "every commit still there")
    }
}

extension DiskWorld {
    /// The `.db.gz` entries in the backup directory (links included).
    func backupsLeft() throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: backups).filter { $0.hasSuffix(".db.gz") })
    }
}

/// Bytes as the tool prints them (`Bytes.describe`): `400.0 KiB`.
private func Bytes(_ value: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var amount = Double(value), unit = 0
    while amount >= 1024, unit < units.count - 1 { amount /= 1024; unit += 1 }
    let tenths = Int((amount * 10).rounded())
    return unit == 0 ? "\(value) B" : "\(tenths / 10).\(tenths % 10) \(units[unit])"
}

extension DiskcheckFixTests {
    /// A stale temp file in temp_dir is step 3's to remove, and to count; the checkpoint
    /// (step 2) claims only what it frees itself.
    func testAStaleTempInTempDirIsStepThreesNotTheCheckpoints() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "16m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 300)
        XCTAssertEqual(try box.demo(["write", world.db, "--commits", "5", "--crash"]).status, 0)
        let temp = try plantStaleTemp(in: world.tmp, bytes: 200 << 10)
        let run = try world.diskcheck(["--fix", "--target", "\(try fs.space().totalBytes)", "--json"] + Self.quietThresholds)
        let steps = try stepsOf(try fixOf(try world.result(run)))
        XCTAssertEqual(steps[1]["status"] as? String, "done", "\(steps[1])")
        XCTAssertEqual(steps[2]["status"] as? String, "done", "\(steps[2])")
        XCTAssertEqual(steps[2]["removed"] as? [String], [temp], "\(steps[2])")
        XCTAssertEqual(steps[2]["freed_bytes"] as? Int64, 200 << 10, "\(steps[2])")
    }
}
