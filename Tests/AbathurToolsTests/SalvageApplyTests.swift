import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-integrity --recover OUT --apply` (issue 13) goes through the core's safe install:
/// the units stopped (a stand-in `systemctl` first on PATH logs each call with the database's
/// hash), the corrupt original in the safety copy, the salvaged database swapped in, the units
/// started, a failed health check rolled back, and a SIGKILL at any step leaves the old file or
/// the new one. The live database is a demo database with one audit leaf page zeroed, closed
/// and checkpointed (no `-wal`), after a backup was taken.
final class SalvageApplyTests: XCTestCase {
    typealias F = SalvageFixtures

    struct World {
        var box: Sandbox
        /// The live database's rows before the damage.
        var original: F.Contents
        var zeroed: F.ZeroedPage
        /// The damaged live database's SHA-256.
        var corrupt: String
        var out: String { box.root + "/out/salvaged.db" }
        var outDir: String { box.root + "/out" }
        var tmp: String { box.root + "/tmp" }
        var env: [String: String] {
            ["PATH": box.root + "/bin:/usr/bin:/bin", "ABATHUR_HEALTH_URL": "", "ABATHUR_TEMP_DIR": tmp]
        }
    }

    func makeWorld(_ name: String = #function, rows: Int = 300) throws -> World {
        let box = try Sandbox.withStandInSystemctl(name)
        for dir in [box.root + "/out", box.root + "/tmp"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        try box.makeDemoDatabase(rows: rows)
        _ = try box.takeBackup()
        let original = try F.contents(box, of: box.db)
        let zeroed = try F.zeroLeafPage(box, of: "audit", in: box.db)
        let check = try Sandbox.execute("/usr/bin/sqlite3", [try F.copy(box, of: box.db), "PRAGMA integrity_check"])
        XCTAssertNotEqual(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "ok", "the live database is damaged: \(check.stderr)")
        return World(box: box, original: original, zeroed: zeroed, corrupt: try box.sha256(box.db))
    }

    /// `abathur-integrity --recover OUT --apply --json --db DB --backup-dir DIR`.
    @discardableResult
    func apply(_ world: World, _ args: [String] = [], env: [String: String] = [:]) throws -> Run {
        try world.box.run("abathur-integrity", ["--recover", world.out, "--apply", "--json", "--db", world.box.db, "--backup-dir", world.box.backups] + args,
                          env: world.env.merging(env) { _, b in b })
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    func liveFiles(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.liveDir).filter { $0.key != F.lockName }
    }

    /// The safety copies (directories in BACKUP_DIR/safety) whose database is byte for byte
    /// the corrupt original.
    func safetyCopiesOfTheOriginal(_ world: World) throws -> [String] {
        let root = world.box.backups + "/safety"
        guard exists(root) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: root).filter { name in
            let db = root + "/" + name + "/abathur.db"
            return try exists(db) && world.box.sha256(db) == world.corrupt
        }
    }

    // MARK: - Applied

    /// The units are stopped with the corrupt database and started with the salvaged one;
    /// the live database is the salvaged one (integrity_check ok, every row that was not on the
    /// zeroed page, nothing invented), the same bytes as OUT; the corrupt original, byte for
    /// byte, is in the safety copy the JSON names; exit 1 (damage met); the JSON says applied.
    func testApplyInstallsTheSalvagedDatabaseAndKeepsTheCorruptOriginal() throws {
        let world = try makeWorld()
        let box = world.box
        let run = try apply(world, env: ["ABATHUR_HEALTH_COMMAND": "/bin/true", "ABATHUR_HEALTH_RETRIES": "1"])
        XCTAssertEqual(run.status, 1, "applied, damage met: \(run.stderr)\n\(run.stdout)")

        let result = try F.result(run)
        XCTAssertEqual(result["applied"] as? Bool, true, "\(result)")
        XCTAssertEqual(result["result"] as? String, "applied", "\(result)")
        let safety = try XCTUnwrap(result["safety_copy"] as? String, "the JSON names the safety copy: \(result.keys.sorted())")
        XCTAssertTrue(safety.hasPrefix(box.backups + "/safety/"), safety)
        XCTAssertEqual(try box.sha256(safety + "/abathur.db"), world.corrupt, "the corrupt original, byte for byte, in \(safety)")

        XCTAssertTrue(exists(world.out), "OUT is written")
        let installed = try box.sha256(box.db)
        XCTAssertNotEqual(installed, world.corrupt)
        XCTAssertEqual(installed, try box.sha256(world.out), "the live database is a copy of OUT")
        XCTAssertFalse(exists(box.db + "-wal"), "no -wal beside the installed database")
        let copy = try F.copy(box, of: box.db)
        XCTAssertEqual(try F.sqlite(copy, "PRAGMA integrity_check"), "ok")
        F.assertSalvaged(try F.contents(copy), from: world.original, losing: world.zeroed, of: "audit", "installed")
        XCTAssertEqual(box.systemctlCalls, ["stop -- \(F.units) \(world.corrupt)", "start -- \(F.units) \(installed)"],
                       "the units were stopped with the corrupt database and started with the salvaged one")
        XCTAssertEqual(try F.leftovers([box.liveDir, world.outDir, world.tmp, box.backups, box.backups + "/safety"]), [])
    }

    /// The corrupt database with a hot `-wal` (20 commits of the demo writer, made after the
    /// damage, which exited without closing): the safety copy holds db, `-wal` and `-shm`
    /// byte for byte, and the installed database has the WAL's commits (the writer's
    /// invariants hold at sequence 20), every table but audit as SQLite reads it through the
    /// WAL, and in audit every row that was not on the zeroed page, none invented.
    func testApplyWithAHotWALKeepsItInTheSafetyCopyAndInstallsItsCommits() throws {
        var world = try makeWorld()
        let box = world.box
        let writer = try box.demo(["write", box.db, "--commits", "20", "--crash"])
        XCTAssertEqual(writer.status, 0, writer.stderr)
        let live = try liveFiles(box)
        XCTAssertEqual(Set(live.keys), ["abathur.db", "abathur.db-wal", "abathur.db-shm"], "a hot WAL over the damaged file")
        world.corrupt = try XCTUnwrap(live["abathur.db"])
        // Everything SQLite can scan through the WAL: every table but the damaged one.
        let readable = try F.contents(box, of: box.db, skipping: ["audit"])

        let run = try apply(world)
        XCTAssertEqual(run.status, 1, "applied, damage met: \(run.stderr)\n\(run.stdout)")
        let result = try F.result(run)
        XCTAssertEqual(result["result"] as? String, "applied", "\(result)")
        XCTAssertEqual((result["wal"] as? [String: Any])?["used"] as? Bool, true, "\(result["wal"] ?? "")")
        let safety = try XCTUnwrap(result["safety_copy"] as? String, "\(result.keys.sorted())")
        XCTAssertEqual(try box.fingerprint(safety), live, "the safety copy: the corrupt db, its -wal and -shm, byte for byte")

        let copy = try F.copy(box, of: box.db)
        XCTAssertEqual(try F.sqlite(copy, "PRAGMA integrity_check"), "ok")
        XCTAssertEqual(try box.demo(["check", copy, "--min-seq", "20"]).status, 0, "the writer's 20 commits, consistent")
        let installed = try F.contents(copy)
        for (name, rows) in readable.tables {
            XCTAssertEqual(installed.tables[name], rows, "\(name): as SQLite read it through the WAL")
        }
        let audit = try XCTUnwrap(installed.tables["audit"]), had = try XCTUnwrap(world.original.tables["audit"])
        let before = Set(had.keys).subtracting(world.zeroed.rowids)
        XCTAssertEqual(before.filter { audit[$0] != had[$0] }, [], "audit: every row that was not on the zeroed page, as it was")
        let added = Set(audit.keys).subtracting(had.keys)
        XCTAssertEqual(added.count, 20, "audit: the writer's 20 rows and nothing else new: \(added.sorted())")
        XCTAssertTrue(added.allSatisfy { audit[$0]?.contains("'writer'") == true }, "\(added.map { audit[$0] ?? "" })")
        XCTAssertEqual(box.systemctlCalls.map { String($0.prefix(6)) }, ["stop -", "start "])
        XCTAssertEqual(box.systemctlCalls.first, "stop -- \(F.units) \(world.corrupt)")
    }

    // MARK: - Rolled back

    /// A health check that fails after the swap: the live database is the corrupt original
    /// again, byte for byte; exit 3; the units were stopped and started around the install and
    /// around the rollback, and run at the end with the original.
    func testAFailedHealthCheckRollsBackToTheCorruptOriginal() throws {
        let world = try makeWorld()
        let box = world.box
        let run = try apply(world, env: ["ABATHUR_HEALTH_COMMAND": "/bin/false", "ABATHUR_HEALTH_RETRIES": "1"])
        XCTAssertEqual(run.status, 3, "\(run.stderr)\n\(run.stdout)")
        XCTAssertTrue(run.stderr.contains("rolled back"), run.stderr)
        let result = try F.result(run)
        XCTAssertEqual(result["applied"] as? Bool, false, "\(result)")
        XCTAssertEqual(result["result"] as? String, "rolled back", "\(result)")

        XCTAssertEqual(try box.sha256(box.db), world.corrupt, "the live database is the corrupt original, byte for byte")
        XCTAssertFalse(exists(box.db + "-wal") || exists(box.db + "-journal"), "nothing beside it that SQLite would replay")
        XCTAssertFalse(try safetyCopiesOfTheOriginal(world).isEmpty, "the corrupt original is in a safety copy")
        let calls = box.systemctlCalls
        XCTAssertEqual(calls.map { String($0.prefix(6)) }, ["stop -", "start ", "stop -", "start "], "\(calls)")
        XCTAssertEqual(calls.first, "stop -- \(F.units) \(world.corrupt)")
        XCTAssertEqual(calls.last, "start -- \(F.units) \(world.corrupt)", "started again with the original in place")
        XCTAssertNotEqual(calls.count > 1 ? calls[1] : "", "start -- \(F.units) \(world.corrupt)", "started once with the salvaged database")
        XCTAssertEqual(try F.leftovers([box.liveDir, world.outDir, world.tmp, box.backups, box.backups + "/safety"]), [])
    }

    // MARK: - Refused

    /// `--apply` with a PATH: exit 2. `--apply` when OUT exists: exit 7. Nothing changes:
    /// no unit stopped, the live files and the backup directory byte-identical, OUT untouched.
    func testApplyWithAPathOrAnExistingOUTChangesNothing() throws {
        let world = try makeWorld(rows: 150)
        let box = world.box
        let live = try liveFiles(box), backups = try box.fingerprint(box.backups)

        let withPath = try box.run("abathur-integrity", ["--recover", world.out, box.db, "--apply", "--db", box.db, "--backup-dir", box.backups],
                                   env: world.env)
        XCTAssertEqual(withPath.status, 2, withPath.stderr)
        XCTAssertFalse(exists(world.out))

        try Data("already here\n".utf8).write(to: URL(fileURLWithPath: world.out))
        let hash = try box.sha256(world.out)
        let outExists = try apply(world)
        XCTAssertEqual(outExists.status, 7, outExists.stderr)
        XCTAssertTrue(outExists.stderr.contains(world.out), outExists.stderr)
        XCTAssertEqual(try box.sha256(world.out), hash, "OUT untouched")

        XCTAssertEqual(box.systemctlCalls, [], "no unit stopped")
        XCTAssertEqual(try liveFiles(box), live, "the live files byte-identical")
        XCTAssertEqual(try box.fingerprint(box.backups), backups, "no safety copy, no forensic copy")
        XCTAssertEqual(try F.leftovers([box.liveDir, world.outDir, world.tmp, box.backups]), [])
    }

    // MARK: - A crash at every step

    enum State: String { case old, new }

    /// ABATHUR_FAULT=OP:crash@N (the process SIGKILLs itself) at every open, write, fsync,
    /// rename and unlink an `--apply` makes: the database path then holds the corrupt original
    /// byte for byte, or the salvaged database (sound, the clean run's rows), never a mix or
    /// nothing; whenever the live file changed, the corrupt original is in a safety copy.
    func testACrashAtEveryStepLeavesTheOldOrTheSalvagedDatabase() throws {
        let world = try makeWorld(rows: 150)
        let box = world.box
        let saved = box.root + "/saved"
        for (from, to) in [(box.liveDir, saved + "/live"), (box.backups, saved + "/backups")] {
            try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
            XCTAssertEqual(try Sandbox.shell("cp -a '\(from)/.' '\(to)/'").status, 0)
        }
        func reset() throws {
            for dir in [box.liveDir, box.backups, world.outDir, world.tmp] where exists(dir) { try FileManager.default.removeItem(atPath: dir) }
            for (from, to) in [(saved + "/live", box.liveDir), (saved + "/backups", box.backups)] {
                try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
                XCTAssertEqual(try Sandbox.shell("cp -a '\(from)/.' '\(to)/'").status, 0)
            }
            for dir in [world.outDir, world.tmp] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            try? FileManager.default.removeItem(atPath: box.systemctlLog)
        }

        // A clean run: the salvaged database, and the calls an --apply makes.
        var salvaged: F.Contents?
        let calls = try FaultTrace.count(in: box.root) { trace in
            let run = try apply(world, env: trace)
            XCTAssertEqual(run.status, 1, run.stderr)
            XCTAssertEqual(try F.result(run)["applied"] as? Bool, true)
            salvaged = try F.contents(box, of: box.db)
        }
        let new = try XCTUnwrap(salvaged)
        F.assertSalvaged(new, from: world.original, losing: world.zeroed, of: "audit", "clean run")
        let faults = FaultTrace.faults(calls, ops: ["rename", "fsync", "open", "write", "unlink"], what: "crash")
        // The safety copy (copied, fsynced, published), OUT's copy beside the database, the swap.
        XCTAssertGreaterThanOrEqual(faults.count, 15, "an --apply makes at least that many calls: \(calls)")
        XCTAssertGreaterThanOrEqual(calls["rename"] ?? 0, 2, "the safety copy's publish and the swap: \(calls)")

        var outcomes: [State: [String]] = [:]
        for fault in faults {
            try reset()
            let run = try apply(world, env: ["ABATHUR_FAULT": fault])
            XCTAssertEqual(run.status, 9, "\(fault): expected the injected SIGKILL, got exit \(run.status): \(run.stderr)")
            guard exists(box.db) else {
                XCTFail("\(fault): no database at \(box.db)")
                continue
            }
            if try box.sha256(box.db) == world.corrupt {
                XCTAssertFalse(exists(box.db + "-wal") || exists(box.db + "-journal"), "\(fault): the old database with something beside it")
                outcomes[.old, default: []].append(fault)
                continue
            }
            let copy = try F.copy(box, of: box.db)
            XCTAssertEqual(try F.sqlite(copy, "PRAGMA integrity_check"), "ok", "\(fault): neither the corrupt original nor a sound database")
            XCTAssertEqual(try F.contents(copy), new, "\(fault): neither the corrupt original nor the salvaged database")
            XCTAssertFalse(try safetyCopiesOfTheOriginal(world).isEmpty, "\(fault): the live file changed, so the corrupt original must be in a safety copy")
            outcomes[.new, default: []].append(fault)
        }
        print("SalvageApplyTests: \(faults.count) injected crashes (calls \(calls)); old: \(outcomes[.old, default: []].count); new: \(outcomes[.new, default: []])")
        XCTAssertFalse(outcomes[.old, default: []].isEmpty, "some crash must have left the old database: \(outcomes)")
        XCTAssertFalse(outcomes[.new, default: []].isEmpty, "some crash must have left the salvaged database: \(outcomes)")
    }
}
