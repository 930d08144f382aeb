import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, item 7: a gzip bomb must not fill a disk. Every inflation (integrity, verify,
/// restore by path or from stdin, drill) is held to the manifest's database size when there is
/// a manifest (more: exit 3), else to the space budget of the directory it writes to (the
/// filesystem stays at or below 90% used: exit 6), checked as the bytes arrive, because gzip's
/// recorded length (ISIZE) can lie and stdin has none.
///
/// Each test puts the directory the inflation writes to on a 64 MiB tmpfs and uses a bomb that
/// inflates to 60 MiB: it would fit (so before the budget the run went on, past 90%, and
/// failed later on the content), but it is more than the budget allows, so the run must stop
/// early with exit 6 and give every byte back.
final class SpaceBudgetTests: XCTestCase {
    static let tmpfsMiB = 64
    static let bombMiB = 60

    /// A tmpfs of `SpaceBudgetTests.tmpfsMiB` at `directory` (created); unmounted at teardown.
    func mountTmpfs(_ directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let mount = try Sandbox.shell("mount -t tmpfs -o size=\(SpaceBudgetTests.tmpfsMiB)m,mode=0700 tmpfs '\(directory)'")
        XCTAssertEqual(mount.status, 0, "this test needs root and tmpfs: \(mount.stderr)")
        addTeardownBlock { _ = try? Sandbox.shell("umount '\(directory)'") }
    }

    /// Bytes free on the filesystem holding `path`, as statvfs says.
    func freeBytes(_ path: String) -> UInt64 {
        var info = statvfs()
        XCTAssertEqual(statvfs(path, &info), 0)
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    /// A gzip bomb at `path`: `mib` MiB of zeros in 4 MiB members (made once, copied), then a
    /// last member holding one byte, so the ISIZE at the end of the file says 1.
    func makeBomb(_ path: String, mib: Int = SpaceBudgetTests.bombMiB) throws {
        let member = path + ".member"
        XCTAssertEqual(try Sandbox.shell("head -c 4M /dev/zero | gzip -9 > '\(member)'").status, 0)
        let copies = String(repeating: "'\(member)' ", count: mib / 4)
        XCTAssertEqual(try Sandbox.shell("{ cat \(copies); printf x | gzip; } > '\(path)' && rm '\(member)'").status, 0)
        let tail = try Data(contentsOf: URL(fileURLWithPath: path)).suffix(4)
        XCTAssertEqual(Array(tail), [1, 0, 0, 0], "the last member's ISIZE says 1 byte")
    }

    /// One line on stderr, `TOOL: error: FILE: ...`, naming the bomb.
    func assertStoppedAtTheBudget(_ run: Run, tool: String, naming file: String, code: Int32 = 6,
                                  line: UInt = #line) {
        XCTAssertEqual(run.status, code, run.stderr, line: line)
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr, line: line)
        XCTAssertTrue(run.stderr.hasPrefix("\(tool): error: \(file): "), run.stderr, line: line)
        XCTAssertTrue(run.stderr.contains("inflates past"), run.stderr, line: line)
    }

    func ourFiles(_ box: Sandbox, _ directory: String) throws -> [String: String] {
        try box.fingerprint(directory).filter { $0.key.hasPrefix("abathur_") || $0.key == "abathur.db" || $0.key.hasPrefix("abathur.db-") }
    }

    // MARK: - abathur-integrity

    func testIntegrityStopsABombAtTheBudgetOfTempDir() throws {
        let box = try Sandbox()
        let temp = box.root + "/tmp"
        try mountTmpfs(temp)
        let bomb = box.root + "/bomb.db.gz"
        try makeBomb(bomb)
        let before = freeBytes(temp)
        let run = try box.run("abathur-integrity", [bomb], env: ["ABATHUR_TEMP_DIR": temp])
        assertStoppedAtTheBudget(run, tool: "abathur-integrity", naming: bomb)
        XCTAssertTrue(run.stderr.contains(temp), run.stderr)
        XCTAssertEqual(freeBytes(temp), before, "the filesystem is left as it was found")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [])
    }

    /// An honest ISIZE that does not fit is refused before a byte is written.
    func testIntegrityRefusesWhatCannotFitBeforeWriting() throws {
        let box = try Sandbox()
        let temp = box.root + "/tmp"
        try mountTmpfs(temp)
        let big = box.root + "/big.db.gz"
        XCTAssertEqual(try Sandbox.shell("head -c 100M /dev/zero | gzip -1 > '\(big)'").status, 0)
        let run = try box.run("abathur-integrity", [big], env: ["ABATHUR_TEMP_DIR": temp])
        XCTAssertEqual(run.status, 6, run.stderr)
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-integrity: error: \(temp): "), run.stderr)
        XCTAssertTrue(run.stderr.contains("at or below 90% used"), run.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [])
    }

    /// The private copy of a live database whose `-wal` has no `-shm` (LiveReader) lands in
    /// temp_dir too, under the same budget: refused before a byte is copied.
    func testIntegrityOfTheLiveDatabaseKeepsItsPrivateCopyWithinTheBudget() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        try box.makeHotWAL(inserts: 20)
        try FileManager.default.removeItem(atPath: box.db + "-shm")
        let temp = box.root + "/tmp"
        try mountTmpfs(temp)
        XCTAssertEqual(try Sandbox.shell("head -c 57M /dev/zero > '\(temp)/filler'").status, 0)
        let before = freeBytes(temp)
        let live = try box.fingerprint(box.liveDir)
        let run = try box.run("abathur-integrity", ["--db", box.db, "--backup-dir", box.backups], env: ["ABATHUR_TEMP_DIR": temp])
        XCTAssertEqual(run.status, 6, run.stderr)
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-integrity: error: \(temp): "), run.stderr)
        XCTAssertEqual(freeBytes(temp), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), ["filler"])
        XCTAssertEqual(try box.fingerprint(box.liveDir), live)
    }

    // MARK: - abathur-backup verify

    /// A backup whose `.gz` was swapped for a bomb: its manifest records the real database
    /// size, so the inflation stops there (exit 3, a bad backup), in temp_dir.
    func testVerifyStopsABombAtTheManifestsSize() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
        let name = try XCTUnwrap(try box.backupFiles().first)
        let temp = box.root + "/tmp"
        try mountTmpfs(temp)
        // Larger than the tmpfs: without a bound it would fill it.
        try makeBomb(box.backups + "/" + name, mib: 128)
        let backups = try ourFiles(box, box.backups)
        let live = try ourFiles(box, box.liveDir)
        let before = freeBytes(temp)
        let run = try box.run("abathur-backup", ["verify", name, "--backup-dir", box.backups], env: ["ABATHUR_TEMP_DIR": temp])
        XCTAssertEqual(run.status, 3, run.stderr)
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("abathur-backup: error: \(box.backups)/\(name): "), run.stderr)
        // The first problem goes to stderr (the .gz's size differs from the manifest's); the
        // result line has them all.
        XCTAssertTrue(run.stdout.contains("inflates past"), run.stdout)
        XCTAssertTrue(run.stdout.contains("the database size its manifest records"), run.stdout)
        XCTAssertEqual(freeBytes(temp), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [])
        XCTAssertEqual(try ourFiles(box, box.backups), backups)
        XCTAssertEqual(try ourFiles(box, box.liveDir), live)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.backups).filter { $0.hasPrefix(".abathur-tmp-") }, [])
    }

    // MARK: - abathur-restore

    /// The live database's directory on a small filesystem, a database in it, and one backup.
    func liveOnTmpfs(_ box: Sandbox) throws {
        try mountTmpfs(box.liveDir)
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
    }

    func restoreEnv() -> [String: String] { ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""] }

    /// A box whose live database is on a small tmpfs, a bomb beside it, and the check that a
    /// restore left that filesystem, the live files and the backups as they were.
    func bombBesideTheLiveDatabase(file: StaticString = #filePath, line: UInt = #line) throws -> (Sandbox, String, () throws -> Void) {
        let box = try Sandbox()
        try liveOnTmpfs(box)
        let bomb = box.root + "/bomb.db.gz"
        try makeBomb(bomb)
        let live = try ourFiles(box, box.liveDir)
        let backups = try ourFiles(box, box.backups)
        let before = freeBytes(box.liveDir)
        return (box, bomb, {
            XCTAssertEqual(self.freeBytes(box.liveDir), before, "the live database's filesystem is left as it was found", file: file, line: line)
            XCTAssertEqual(try self.ourFiles(box, box.liveDir), live, file: file, line: line)
            XCTAssertEqual(try self.ourFiles(box, box.backups), backups, file: file, line: line)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.liveDir).filter { $0.hasPrefix(".abathur-tmp-") }, [], file: file, line: line)
        })
    }

    func testRestoreByPathStopsABombWithAForgedISIZE() throws {
        let (box, bomb, untouched) = try bombBesideTheLiveDatabase()
        let run = try box.run("abathur-restore", [bomb, "--db", box.db, "--backup-dir", box.backups], env: restoreEnv())
        assertStoppedAtTheBudget(run, tool: "abathur-restore", naming: bomb)
        XCTAssertTrue(run.stderr.contains(box.liveDir), run.stderr)
        try untouched()
    }

    func testRestoreFromStdinStopsABomb() throws {
        let (box, bomb, untouched) = try bombBesideTheLiveDatabase()
        // Through a pipe, as `... | abathur-restore -` reads it: no size to go by.
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ABATHUR_") && $0.key != "JOURNAL_STREAM" }
        environment["ABATHUR_CONFIG"] = box.config
        for (k, v) in restoreEnv() { environment[k] = v }
        let run = try Sandbox.execute("/bin/sh", ["-c", "cat \"$1\" | \"$2\" - --db \"$3\" --backup-dir \"$4\"", "sh",
                                                  bomb, Binaries.tool("abathur-restore"), box.db, box.backups],
                                      environment: environment)
        assertStoppedAtTheBudget(run, tool: "abathur-restore", naming: "stdin")
        try untouched()
    }

    // MARK: - abathur-restore --drill

    func testDrillStopsABombAtTheBudgetOfTempDir() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
        let temp = box.root + "/tmp"
        try mountTmpfs(temp)
        let bomb = box.root + "/bomb.db.gz"
        try makeBomb(bomb)
        let live = try ourFiles(box, box.liveDir)
        let backups = try ourFiles(box, box.backups)
        let before = freeBytes(temp)
        let run = try box.run("abathur-restore", ["--drill", bomb, "--db", box.db, "--backup-dir", box.backups],
                              env: restoreEnv().merging(["ABATHUR_TEMP_DIR": temp]) { $1 })
        assertStoppedAtTheBudget(run, tool: "abathur-restore", naming: bomb)
        XCTAssertEqual(freeBytes(temp), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp), [])
        XCTAssertEqual(try ourFiles(box, box.liveDir), live)
        XCTAssertEqual(try ourFiles(box, box.backups), backups)
    }
}
