import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-diskcheck`'s report on small real filesystems (issue 12): thresholds as percent
/// used and as bytes free, inodes, `--nagios`, free for root against free for others on ext4,
/// a filesystem shared by the database and the backups listed once, and the growth estimate
/// from backups taken at known dates.
final class DiskcheckReportTests: XCTestCase {
    /// 2026-11-27T10:00:00Z, the test clock (ABATHUR_NOW) for backups.
    static let t0 = 1_795_773_600
    static let hour = 3600
    static let day = 86400

    /// A percentage as the tool prints it (`Percent.describe`): `85%`, `81.3%`.
    func percent(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)%" : "\(tenths / 10).\(tenths % 10)%"
    }

    func volumes(_ result: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let report = try XCTUnwrap(result["report"] as? [String: Any], "\(result)", file: file, line: line)
        return try XCTUnwrap(report["volumes"] as? [[String: Any]], "\(report)", file: file, line: line)
    }

    // MARK: - thresholds

    /// Percent used (df's Use%) and bytes free: below both is 0, past a warning level 1, past a
    /// critical one 6, and the filesystem is named on stderr.
    func testPercentAndFreeThresholdsGiveExitCodesAndNameTheFilesystem() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "16m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 100)
        let total = try fs.space().totalBytes
        try fs.fill(leaving: total * 15 / 100)
        let space = try fs.space()
        let used = space.usedPercent
        XCTAssertGreaterThan(used, 80)
        XCTAssertLessThan(used, 90)
        let free = space.freeBytes

        // Percent used; the free-space checks off (the default critical is 2GiB).
        let ok = try world.diskcheck(["--warn", percent(used + 5), "--crit", percent(used + 10), "--crit-free", "0"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(ok.stderr, "", "a healthy run says nothing on stderr")
        XCTAssertTrue(ok.stdout.contains("verdict: ok"), ok.stdout)

        let warn = try world.diskcheck(["--warn", percent(used - 5), "--crit", percent(used + 5), "--crit-free", "0"])
        XCTAssertEqual(warn.status, 1, warn.stderr)
        XCTAssertTrue(warn.stderr.contains("abathur-diskcheck: warning: \(world.liveDir) (database"), warn.stderr)
        XCTAssertTrue(warn.stderr.contains("(warning at \(percent(used - 5)))"), warn.stderr)
        XCTAssertTrue(warn.stdout.contains("verdict: warning"), warn.stdout)

        let crit = try world.diskcheck(["--warn", percent(used - 10), "--crit", percent(used - 5), "--crit-free", "0", "--json"])
        XCTAssertEqual(crit.status, 6, crit.stderr)
        XCTAssertTrue(crit.stderr.contains("abathur-diskcheck: error: \(world.liveDir): "), crit.stderr)
        XCTAssertTrue(crit.stderr.contains("(critical at \(percent(used - 5)))"), crit.stderr)
        let volumes = try volumes(try world.result(crit))
        XCTAssertEqual(volumes.count, 1, "\(volumes)")
        XCTAssertEqual(volumes[0]["level"] as? String, "critical")
        XCTAssertEqual(try XCTUnwrap(volumes[0]["used_percent"] as? Double), used, accuracy: 0.001, "df's Use%")
        let findings = try XCTUnwrap(volumes[0]["findings"] as? [[String: Any]])
        XCTAssertEqual(findings.map { $0["resource"] as? String }, ["bytes"], "\(findings)")
        XCTAssertEqual(findings.map { $0["level"] as? String }, ["critical"], "\(findings)")

        // Bytes free; the percentages out of the way.
        let high = ["--warn", "99%", "--crit", "100%"]
        let freeOK = try world.diskcheck(high + ["--warn-free", "\(free / 2)", "--crit-free", "\(free / 4)"])
        XCTAssertEqual(freeOK.status, 0, freeOK.stderr)
        let freeWarn = try world.diskcheck(high + ["--warn-free", "\(free * 2)", "--crit-free", "\(free / 2)"])
        XCTAssertEqual(freeWarn.status, 1, freeWarn.stderr)
        XCTAssertTrue(freeWarn.stderr.contains("abathur-diskcheck: warning: \(world.liveDir) (database"), freeWarn.stderr)
        XCTAssertTrue(freeWarn.stderr.contains("free (warning below"), freeWarn.stderr)
        let freeCrit = try world.diskcheck(high + ["--crit-free", "\(free + 1)"])
        XCTAssertEqual(freeCrit.status, 6, freeCrit.stderr)
        XCTAssertTrue(freeCrit.stderr.contains("abathur-diskcheck: error: \(world.liveDir): "), freeCrit.stderr)
        XCTAssertTrue(freeCrit.stderr.contains("free (critical below"), freeCrit.stderr)
        // Exactly the free amount is not below it.
        XCTAssertEqual(try world.diskcheck(high + ["--crit-free", "\(free)"]).status, 0)

        // --nagios: one line, 0/1/2.
        for (args, code, state) in [(["--warn", percent(used + 5), "--crit", percent(used + 10)], Int32(0), "OK"),
                                    (["--warn", percent(used - 5), "--crit", percent(used + 5)], 1, "WARNING"),
                                    (["--warn", percent(used - 10), "--crit", percent(used - 5)], 2, "CRITICAL")] {
            let run = try world.diskcheck(args + ["--crit-free", "0", "--nagios"])
            XCTAssertEqual(run.status, code, "\(state): \(run.stdout) \(run.stderr)")
            let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertEqual(lines.count, 2, "one line and its newline: \(run.stdout)")
            XCTAssertTrue(run.stdout.hasPrefix("ABATHUR-DISKCHECK \(state) - "), run.stdout)
            XCTAssertTrue(run.stdout.contains(" | '\(world.liveDir)'="), "perfdata: \(run.stdout)")
            if state != "OK" { XCTAssertTrue(run.stdout.contains(world.liveDir + ":"), "names the filesystem: \(run.stdout)") }
        }
    }

    /// A tmpfs with few inodes, filled with empty files: the percentages apply to inodes too,
    /// while the bytes are nowhere near a threshold.
    func testInodeThresholds() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "8m", inodes: 64)
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 100)
        try fs.fillInodes(leaving: 4)
        let space = try fs.space()
        XCTAssertLessThan(space.usedPercent, 50, "the bytes stay far from any threshold")
        let usedInodes = Double(space.totalInodes - space.freeInodes) * 100 / Double(space.totalInodes)
        XCTAssertGreaterThan(usedInodes, 90)

        let ok = try world.diskcheck(["--warn", "99%", "--crit", "100%", "--crit-free", "0"])
        XCTAssertEqual(ok.status, 0, ok.stderr)

        let warn = try world.diskcheck(["--warn", "80%", "--crit", "99%", "--crit-free", "0", "--json"])
        XCTAssertEqual(warn.status, 1, warn.stderr)
        XCTAssertTrue(warn.stderr.contains("abathur-diskcheck: warning: \(world.liveDir) (database"), warn.stderr)
        XCTAssertTrue(warn.stderr.contains("of inodes used (warning at 80%), 4 free"), warn.stderr)
        let volume = try XCTUnwrap(try volumes(try world.result(warn)).first)
        XCTAssertEqual(try XCTUnwrap(volume["inodes_used_percent"] as? Double), usedInodes, accuracy: 0.001)
        let findings = try XCTUnwrap(volume["findings"] as? [[String: Any]])
        XCTAssertEqual(findings.map { $0["resource"] as? String }, ["inodes"], "only the inodes: \(findings)")

        let crit = try world.diskcheck(["--warn", "80%", "--crit", "90%", "--crit-free", "0"])
        XCTAssertEqual(crit.status, 6, crit.stderr)
        XCTAssertTrue(crit.stderr.contains("abathur-diskcheck: error: \(world.liveDir): "), crit.stderr)
        XCTAssertTrue(crit.stderr.contains("of inodes used (critical at 90%)"), crit.stderr)

        let nagios = try world.diskcheck(["--warn", "80%", "--crit", "90%", "--crit-free", "0", "--nagios"])
        XCTAssertEqual(nagios.status, 2, nagios.stdout)
        XCTAssertTrue(nagios.stdout.hasPrefix("ABATHUR-DISKCHECK CRITICAL - \(world.liveDir): "), nagios.stdout)
        XCTAssertTrue(nagios.stdout.contains("of inodes used"), nagios.stdout)
    }

    /// ext4 keeps blocks for root: the report shows both amounts, and the thresholds judge what
    /// an unprivileged writer (the service) has, as df does, though the tool runs as root.
    func testExt4RootReservedBlocksAreNotFreeForTheService() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.ext4(at: box.root + "/fs", image: box.root + "/fs.img", megabytes: 8, reservedPercent: 20)
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 100)
        try fs.fill(leaving: 300 << 10)
        let space = try fs.space()
        XCTAssertGreaterThan(space.freeBytesForRoot - space.freeBytes, 1 << 20, "20% of 8 MiB is for root only")
        // df's Use% counts what others may use: far above the share of the blocks in use.
        let usedOfTotal = Double(space.totalBytes - space.freeBytesForRoot) * 100 / Double(space.totalBytes)
        XCTAssertGreaterThan(space.usedPercent, 90)
        XCTAssertLessThan(usedOfTotal, 85)

        let run = try world.diskcheck(["--warn", "90%", "--crit", "99%", "--crit-free", "0", "--json"])
        XCTAssertEqual(run.status, 1, "\(space.usedPercent)% used as df counts it: \(run.stderr)")
        let volume = try XCTUnwrap(try volumes(try world.result(run)).first)
        let filesystem = try XCTUnwrap(volume["filesystem"] as? [String: Any])
        XCTAssertEqual(filesystem["free_bytes"] as? Int64, space.freeBytes, "\(filesystem)")
        XCTAssertEqual(filesystem["free_bytes_for_root"] as? Int64, space.freeBytesForRoot, "\(filesystem)")
        XCTAssertEqual(filesystem["total_bytes"] as? Int64, space.totalBytes, "\(filesystem)")
        XCTAssertEqual(filesystem["device"] as? UInt64, space.device, "\(filesystem)")
        XCTAssertEqual(try XCTUnwrap(volume["used_percent"] as? Double), space.usedPercent, accuracy: 0.001)

        // Root has more than a MiB; the service has 300 KiB: critical below 1MiB free.
        let crit = try world.diskcheck(["--warn", "99%", "--crit", "100%", "--crit-free", "1MiB"])
        XCTAssertEqual(crit.status, 6, crit.stderr)
        XCTAssertTrue(crit.stderr.contains("abathur-diskcheck: error: \(world.liveDir): "), crit.stderr)
        XCTAssertTrue(crit.stdout.contains("free (") && crit.stdout.contains(" for root) of "), "both amounts on the line: \(crit.stdout)")
    }

    /// UNKNOWN (3) for a report that cannot be made: the backup directory cannot be read by
    /// the user the tool runs as.
    func testNagiosUnknownWhenTheBackupDirectoryCannotBeRead() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "8m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 50)
        try FileManager.default.createDirectory(atPath: world.backups, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        for dir in [box.root, world.liveDir, world.tmp] {
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: world.db)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: box.config)
        // nobody: it can see the database, not into root's 0700 backup directory.
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ABATHUR_") }
        for (key, value) in world.env { environment[key] = value }
        environment["ABATHUR_CONFIG"] = box.config
        let run = try Sandbox.execute("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                           Binaries.tool("abathur-diskcheck"), "--nagios", "--crit-free", "0"],
                                      environment: environment)
        XCTAssertEqual(run.status, 3, "\(run.stdout) \(run.stderr)")
        XCTAssertTrue(run.stdout.hasPrefix("ABATHUR-DISKCHECK UNKNOWN - "), run.stdout)
        XCTAssertTrue(run.stdout.contains(world.backups), "names what it could not read: \(run.stdout)")
        XCTAssertEqual(run.stdout.split(separator: "\n").count, 1, run.stdout)
    }

    // MARK: - the reserve

    /// A plain run makes the reserve only when the filesystem stays below the warning level
    /// with it (else a warning, and nothing is written); once there is room it is made,
    /// allocated and not sparse; when it is no longer configured, the next run deletes it.
    func testTheReserveIsMadeOnlyBelowTheWarningLevelAndDeletedWhenNoLongerConfigured() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "8m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 100)
        let reserve = world.liveDir + "/.abathur.db.abathur-reserve"
        let thresholds = "disk_warn = 95%\ndisk_crit = 99%\ndisk_crit_free =\n"
        try Data(("reserve = 512KiB\n" + thresholds).utf8).write(to: URL(fileURLWithPath: box.config))
        // 700 KiB free: with the reserve the filesystem would be past 95% used.
        try fs.fill(leaving: 700 << 10)
        let free = try fs.space().freeBytes
        let refused = try world.diskcheck(["--json"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        let upkeep = try XCTUnwrap(try world.result(refused)["reserve"] as? [String: Any])
        XCTAssertEqual(upkeep["action"] as? String, "missing", "\(upkeep)")
        XCTAssertTrue(refused.stderr.contains("abathur-diskcheck: warning: \(reserve): the 512.0 KiB reserve is missing and was not created"), refused.stderr)
        XCTAssertNil(FileBlocks(reserve))
        XCTAssertEqual(try fs.space().freeBytes, free, "nothing written")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: world.liveDir).filter { $0.hasPrefix(".abathur-tmp-") }, [])

        try FileManager.default.removeItem(atPath: fs.mountPoint + "/filler")
        let made = try world.diskcheck([])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertTrue(made.stdout.contains("reserve: \(reserve): created the 512.0 KiB reserve"), made.stdout)
        let blocks = try XCTUnwrap(FileBlocks(reserve))
        XCTAssertTrue(blocks.isRegular)
        XCTAssertEqual(blocks.size, 512 << 10)
        XCTAssertGreaterThanOrEqual(blocks.allocated, 512 << 10, "allocated, not sparse")
        let kept = try world.diskcheck(["--json"])
        XCTAssertEqual((try world.result(kept)["reserve"] as? [String: Any])?["action"] as? String, "kept")

        try Data(thresholds.utf8).write(to: URL(fileURLWithPath: box.config))
        let deleted = try world.diskcheck([])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        XCTAssertTrue(deleted.stdout.contains("reserve: \(reserve): reserve is not configured any more: deleted the ballast file"), deleted.stdout)
        XCTAssertNil(FileBlocks(reserve))
    }

    // MARK: - filesystems counted once

    /// The database and its backups on one tmpfs: one volume with both roles. The backups on
    /// a tmpfs of their own: a second volume.
    func testASharedFilesystemIsListedOnceAndASeparateOneTwice() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "16m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 100)
        try world.backup(at: Self.t0)

        let shared = try world.diskcheck(["--crit-free", "0", "--json"])
        XCTAssertEqual(shared.status, 0, shared.stderr)
        let one = try volumes(try world.result(shared))
        XCTAssertEqual(one.count, 1, "\(one)")
        let roles = try XCTUnwrap(one[0]["roles"] as? [String])
        XCTAssertEqual(Set(roles), ["database", "backups", "safety copies", "temp_dir", "SQLite temp directory"], "\(roles)")
        XCTAssertEqual(roles.count, Set(roles).count, "each role once: \(roles)")
        let filesystem = try XCTUnwrap(one[0]["filesystem"] as? [String: Any])
        XCTAssertEqual(filesystem["device"] as? UInt64, try fs.space().device)
        let human = try world.diskcheck(["--crit-free", "0"])
        XCTAssertEqual(human.stdout.split(separator: "\n").filter { $0.hasPrefix("filesystem: ") }.count, 1, human.stdout)
        XCTAssertTrue(human.stdout.contains("filesystem: \(world.liveDir) (database, backups, "), human.stdout)

        // The backups on their own tmpfs.
        let other = try SmallFilesystem.tmpfs(at: box.root + "/other", size: "8m")
        defer { other.unmount() }
        let separate = try DiskWorld(box, root: fs.mountPoint, backups: other.mountPoint + "/backups")
        try separate.backup(at: Self.t0 + Self.hour)
        let two = try volumes(try separate.result(try separate.diskcheck(["--crit-free", "0", "--json"])))
        XCTAssertEqual(two.count, 2, "\(two)")
        let devices = try two.map { try XCTUnwrap(($0["filesystem"] as? [String: Any])?["device"] as? UInt64) }
        XCTAssertEqual(devices, [try fs.space().device, try other.space().device])
        XCTAssertEqual(Set(try XCTUnwrap(two[0]["roles"] as? [String])), ["database", "temp_dir", "SQLite temp directory"])
        XCTAssertEqual(Set(try XCTUnwrap(two[1]["roles"] as? [String])), ["backups", "safety copies"])
        XCTAssertEqual((two[1]["paths"] as? [String])?.first, separate.backups)
    }

    // MARK: - growth

    /// Backups at known dates while the database grows: bytes a day is the least-squares
    /// slope of database.bytes over createdUnix from the manifests, and the days until full
    /// are the database filesystem's free bytes over it.
    func testGrowthFromBackupsWithKnownDates() throws {
        let box = try Sandbox()
        let fs = try SmallFilesystem.tmpfs(at: box.root + "/fs", size: "32m")
        defer { fs.unmount() }
        let world = try DiskWorld(box, root: fs.mountPoint)
        try world.makeDatabase(rows: 100)
        // Uneven steps at uneven dates: the slope is not the line through the ends.
        let days = [0.0, 0.5, 1.5, 4.0]
        let grow = [0, 600, 20, 100]
        var names: [String] = []
        for (when, rows) in zip(days, grow) {
            if rows > 0 {
                try world.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows)) INSERT INTO document_index(path, title, content_hash) SELECT 'grow/' || hex(randomblob(8)) || '/' || i, 'growth', hex(randomblob(400)) FROM n")
            }
            names.append(try world.backup(at: Self.t0 + Int(when * Double(Self.day))))
        }
        let manifests = try names.map { name -> (Double, Double) in
            let data = try Data(contentsOf: URL(fileURLWithPath: world.backups + "/" + name + ".json"))
            let manifest = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let created = try XCTUnwrap(manifest["created_unix"] as? Int64, "\(manifest.keys.sorted())")
            let bytes = try XCTUnwrap((manifest["database"] as? [String: Any])?["bytes"] as? Int64)
            return (Double(created), Double(bytes))
        }
        XCTAssertEqual(Set(manifests.map(\.1)).count, 4, "the database grew between each backup: \(manifests)")
        // Least squares, x in days.
        let first: Double = manifests[0].0
        let xs: [Double] = manifests.map { ($0.0 - first) / 86400 }
        let ys: [Double] = manifests.map(\.1)
        let mx: Double = xs.reduce(0, +) / 4
        let my: Double = ys.reduce(0, +) / 4
        var covariance = 0.0, variance = 0.0
        for (x, y) in zip(xs, ys) {
            covariance += (x - mx) * (y - my)
            variance += (x - mx) * (x - mx)
        }
        let slope = covariance / variance
        let endToEnd = (ys[3] - ys[0]) / (xs[3] - xs[0])
        XCTAssertGreaterThan(abs(slope - endToEnd) / slope, 0.01, "the data tells the two apart")

        let now = Self.t0 + 4 * Self.day + Self.hour
        let run = try world.diskcheck(["--crit-free", "0", "--json"], env: ["ABATHUR_NOW": "\(now)"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try XCTUnwrap(try world.result(run)["report"] as? [String: Any])
        let growth = try XCTUnwrap(report["growth"] as? [String: Any], "\(report.keys.sorted())")
        let points = try XCTUnwrap(growth["points"] as? [[String: Any]])
        XCTAssertEqual(points.map { $0["backup"] as? String }, names)
        XCTAssertEqual(points.map { ($0["created_unix"] as? Int64).map(Double.init) }, manifests.map(\.0))
        XCTAssertEqual(points.map { ($0["database_bytes"] as? Int64).map(Double.init) }, manifests.map(\.1))
        let perDay = try XCTUnwrap(growth["bytes_per_day"] as? Double, "\(growth)")
        XCTAssertEqual(perDay, slope, accuracy: slope * 1e-9)
        let free = try fs.space().freeBytes
        let volume = try XCTUnwrap(try volumes(try world.result(run)).first)
        XCTAssertEqual((volume["filesystem"] as? [String: Any])?["free_bytes"] as? Int64, free, "nothing written since")
        let daysUntilFull = try XCTUnwrap(growth["days_until_full"] as? Double, "\(growth)")
        XCTAssertEqual(daysUntilFull, Double(free) / slope, accuracy: 1e-6)
        let human = try world.diskcheck(["--crit-free", "0"], env: ["ABATHUR_NOW": "\(now)"])
        XCTAssertTrue(human.stdout.contains("growth: ") && human.stdout.contains("/day over 4 backups"), human.stdout)
        XCTAssertTrue(human.stdout.contains("full in \(Int(daysUntilFull.rounded(.down))) days"), human.stdout)

        // Backups older than 30 days do not count.
        let later = Self.t0 + 33 * Self.day
        let aged = try world.diskcheck(["--crit-free", "0", "--json"], env: ["ABATHUR_NOW": "\(later)"])
        let agedGrowth = try XCTUnwrap((try world.result(aged)["report"] as? [String: Any])?["growth"] as? [String: Any])
        XCTAssertEqual((agedGrowth["points"] as? [[String: Any]])?.map { $0["backup"] as? String }, [names[3]], "\(agedGrowth)")
        XCTAssertNil(agedGrowth["bytes_per_day"] as? Double, "one point is not a rate: \(agedGrowth)")
    }
}
