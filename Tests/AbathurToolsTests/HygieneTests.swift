import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, the hygiene holes: closed or full standard descriptors, FIFOs and other special
/// files where a file is read, Prometheus textfiles other users must read, and config-file
/// bytes echoed raw to a terminal.
final class HygieneTests: XCTestCase {
    static let tools = ["abathur-backup", "abathur-integrity", "abathur-restore"]
    /// Only a guard against a hang taking the suite with it; no test asserts on time.
    static let hangGuard: TimeInterval = 120

    /// Runs `tool args` through `sh -c 'exec TOOL ARGS REDIRECTIONS'`, so the tool starts with
    /// descriptors closed (`>&-`) or on /dev/full, and with `umask` when given.
    func runShell(_ box: Sandbox, _ tool: String, _ args: [String], redirect: String, umask: String? = nil,
                  env: [String: String] = [:]) throws -> Run {
        let prefix = umask.map { "umask \($0); " } ?? ""
        return try box.run("/bin/sh", ["-c", prefix + "exec \"$0\" \"$@\" " + redirect, Binaries.tool(tool)] + args,
                           env: env, timeout: HygieneTests.hangGuard)
    }

    func names(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    func size(_ path: String) throws -> Int {
        try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    }

    func mode(_ path: String) throws -> Int {
        try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    func assertOneLine(_ run: Run, _ prefix: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr, file: file, line: line)
        XCTAssertTrue(run.stderr.hasPrefix(prefix), "expected \(prefix)...: \(run.stderr)", file: file, line: line)
    }

    // MARK: - Item 2: standard descriptors

    /// `--stdout >&-`: before the fix the lock file's open() took descriptor 1 and the whole
    /// gzip stream landed in `.abathur.lock`, exit 0. Now: exit 8, one line, nothing left.
    func testStdoutBackupToClosedOrFullStdoutFailsAndLeavesNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 200)
        let live = try box.fingerprint(box.liveDir)
        for redirect in [">&-", ">/dev/full"] {
            let run = try runShell(box, "abathur-backup", ["--stdout", "--db", box.db, "--backup-dir", box.backups], redirect: redirect)
            XCTAssertEqual(run.status, 8, "\(redirect): \(run.stderr)")
            assertOneLine(run, "abathur-backup: error: stdout: ")
            XCTAssertEqual(names(box.backups), [".abathur.lock"], "\(redirect): no backup, no manifest, no temp file")
            XCTAssertEqual(try size(box.backups + "/.abathur.lock"), 0, "\(redirect): the lock file stays empty")
            XCTAssertEqual(try box.fingerprint(box.liveDir), live)
        }
    }

    /// With stderr closed, the lock file must not become "stderr" and collect diagnostics.
    func testClosedStderrNeverWritesIntoTheLockFile() throws {
        let box = try Sandbox()
        let run = try runShell(box, "abathur-backup", ["--db", box.db, "--backup-dir", box.backups], redirect: "2>&-")
        XCTAssertEqual(run.status, 8, "a missing database is still exit 8")
        XCTAssertEqual(names(box.backups), [".abathur.lock"])
        XCTAssertEqual(try size(box.backups + "/.abathur.lock"), 0, "the diagnostic went nowhere, not into the lock file")
    }

    /// `abathur-restore - <&-`: a closed stdin is not an empty stream that our own temp file
    /// could stand in for; the restore fails before touching anything live.
    func testRestoreFromClosedStdinFailsAndTouchesNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
        let live = try box.fingerprint(box.liveDir)
        let backups = try box.fingerprint(box.backups)
        let run = try runShell(box, "abathur-restore", ["--db", box.db, "--backup-dir", box.backups, "-"], redirect: "<&-",
                               env: ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""])
        XCTAssertEqual(run.status, 8, run.stderr)
        assertOneLine(run, "abathur-restore: error: stdin: ")
        XCTAssertEqual(try box.fingerprint(box.liveDir).filter { !$0.key.hasPrefix(".abathur") }, live)
        XCTAssertEqual(try box.fingerprint(box.backups).filter { $0.key != "incidents" }, backups)
    }

    /// Every kind of stdout output notices a write error: result lines, listings, the JSON
    /// document, --print-config and --help. None exits 0.
    func testEveryStdoutWriterNoticesAWriteError() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        XCTAssertEqual(try box.backup().status, 0)
        let common = ["--db", box.db, "--backup-dir", box.backups]
        let env = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]
        let cases: [(String, [String])] = [
            ("abathur-backup", common),
            ("abathur-backup", ["--json"] + common),
            ("abathur-backup", ["status"] + common),
            ("abathur-backup", ["verify"] + common),
            ("abathur-backup", ["--print-config"] + common),
            ("abathur-backup", ["--help"]),
            ("abathur-integrity", common),
            ("abathur-integrity", ["--json"] + common),
            ("abathur-restore", ["--list"] + common),
            ("abathur-restore", ["--list", "--json"] + common),
            ("abathur-restore", ["--dry-run"] + common),
        ]
        for (tool, args) in cases {
            for redirect in [">&-", ">/dev/full"] {
                let run = try runShell(box, tool, args, redirect: redirect, env: env)
                let what = "\(tool) \(args.first ?? "") \(redirect)"
                XCTAssertEqual(run.status, 8, "\(what): \(run.stderr)")
                XCTAssertEqual(run.stderrLines.filter { $0.contains("error: stdout: ") }.count, 1, "\(what): \(run.stderr)")
            }
        }
        XCTAssertEqual(try size(box.backups + "/.abathur.lock"), 0)
        XCTAssertEqual(try box.backupFiles().count, 5, "the four takes published their backups; only their output was lost")
    }

    // MARK: - Item 6: FIFOs and other special files

    func makeFIFO(_ path: String) {
        XCTAssertEqual(mkfifo(path, 0o600), 0, String(cString: strerror(errno)))
    }

    /// A unix socket bound at `path` (the file stays after the process exits).
    func makeSocket(_ path: String) throws {
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path])
        XCTAssertEqual(run.status, 0, run.stderr)
    }

    /// Exit 7, SPEC.md's row for a directory, device, FIFO or socket. Integrity reports these
    /// as a finding whose exit code comes from IntegrityChecker, which the cross-tool
    /// exit-code matrix (issue 9, item 5) moves to 7; until then it only must not hang or pass.
    func assertRefused(_ run: Run, _ tool: String, file: StaticString = #filePath, line: UInt = #line) {
        if tool == "abathur-integrity" {
            XCTAssertTrue([3, 4, 7].contains(run.status), "\(tool): \(run.stderr)", file: file, line: line)
        } else {
            XCTAssertEqual(run.status, 7, "\(tool): \(run.stderr)", file: file, line: line)
        }
    }

    /// A FIFO as `--db` hung every tool in open(2), backup while holding the backup
    /// directory's lock. Every tool now refuses it promptly (exit 7) and leaves no lock held.
    func testFIFOAsDatabaseIsRefusedByEveryTool() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 50, at: box.root + "/source.db")
        XCTAssertEqual(try box.run("abathur-backup", ["--db", box.root + "/source.db", "--backup-dir", box.backups]).status, 0)
        makeFIFO(box.db)
        let env = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]
        for tool in HygieneTests.tools {
            let run = try box.run(tool, ["--db", box.db, "--backup-dir", box.backups], env: env, timeout: HygieneTests.hangGuard)
            assertRefused(run, tool)
            assertOneLine(run, "\(tool): error: \(box.db): ")
            XCTAssertTrue(run.stderr.contains("FIFO"), "\(tool) says what the file is: \(run.stderr)")
        }
        // The lock is free again: a backup of the real database goes through at once.
        let after = try box.run("abathur-backup", ["--db", box.root + "/source.db", "--backup-dir", box.backups])
        XCTAssertEqual(after.status, 0, after.stderr)
    }

    /// Every other input path: integrity of a PATH (`.db` and `.db.gz`), restore from a PATH
    /// (with and without `--force`, which reads a pipe on purpose), a FIFO where a backup or
    /// its manifest should be, and `--config`.
    func testFIFOsOnEveryOtherInputPath() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 50)
        XCTAssertEqual(try box.backup().status, 0)
        let live = try box.fingerprint(box.liveDir)
        let env = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]
        let common = ["--db", box.db, "--backup-dir", box.backups]
        let fifoDB = box.root + "/pipe.db", fifoGz = box.root + "/pipe.db.gz", fifoConf = box.root + "/pipe.conf"
        for path in [fifoDB, fifoGz, fifoConf] { makeFIFO(path) }

        var cases: [(String, [String], String)] = [
            ("abathur-integrity", common + [fifoDB], fifoDB),
            ("abathur-integrity", common + [fifoGz], fifoGz),
            ("abathur-restore", common + [fifoGz], fifoGz),
            ("abathur-restore", common + ["--to", box.root + "/new.db", fifoDB], fifoDB),
        ]
        for tool in HygieneTests.tools { cases.append((tool, common + ["--config", fifoConf], fifoConf)) }
        for (tool, args, path) in cases {
            let run = try box.run(tool, args, env: env, timeout: HygieneTests.hangGuard)
            assertRefused(run, tool)
            assertOneLine(run, "\(tool): error: \(path): ")
        }
        XCTAssertEqual(try box.fingerprint(box.liveDir).filter { !$0.key.hasPrefix(".abathur") }, live)

        // A FIFO with a backup's name, and a FIFO as a real backup's manifest: nothing hangs,
        // and neither counts as a good backup.
        let good = try XCTUnwrap(try box.backupFiles().first)
        makeFIFO(box.backups + "/abathur_2020-01-01_00-00-00.db.gz")
        let manifestFIFO = box.backups + "/manual_20200101_000000.db.gz"
        XCTAssertTrue(FileManager.default.createFile(atPath: manifestFIFO, contents: try Data(contentsOf: URL(fileURLWithPath: box.backups + "/" + good))))
        makeFIFO(manifestFIFO + ".json")
        for (tool, args) in [("abathur-backup", ["verify"]), ("abathur-integrity", ["--all-backups"]),
                             ("abathur-restore", ["--list"]), ("abathur-backup", ["status"])] {
            let run = try box.run(tool, args + common, env: env, timeout: HygieneTests.hangGuard)
            for fifo in ["abathur_2020-01-01_00-00-00.db.gz", "manual_20200101_000000.db.gz"] {
                XCTAssertFalse(run.stdout.contains("\(fifo): ok"), "\(tool) \(args): \(fifo) is no good backup: \(run.stdout)")
            }
        }
        let restored = try box.run("abathur-restore", common + ["--to", box.root + "/restored.db"], env: env, timeout: HygieneTests.hangGuard)
        XCTAssertEqual(restored.status, 0, "the newest good backup is still found: \(restored.stderr)")
    }

    /// SQLite opens a database's `-wal` and `-shm` itself, and blocked in open(2) on a FIFO
    /// there: backup, integrity and restore (checking who holds the `-shm`) hung, restore
    /// while ignoring SIGTERM. A FIFO companion is refused now, and nothing live changes.
    func testFIFOAsWALOrSharedMemoryIsRefused() throws {
        let env = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]
        // A crashed writer's hot WAL, then one companion swapped for a FIFO.
        for companion in ["-shm", "-wal"] {
            let box = try Sandbox()
            try box.makeDemoDatabase(rows: 50)
            XCTAssertEqual(try box.backup().status, 0)
            try DyingWriter.run(box.db, "c.execute(\"INSERT INTO state(key, value, updated_at) VALUES ('hot', 'x', 'now')\")")
            let path = box.db + companion
            try FileManager.default.removeItem(atPath: path)
            makeFIFO(path)
            // (sha256sum would block on the FIFO itself: fingerprint the regular files.)
            let other = box.db + (companion == "-shm" ? "-wal" : "-shm")
            func live() throws -> [String] { [try box.sha256(box.db), try box.sha256(other)] }
            let before = try live()
            for tool in HygieneTests.tools {
                let run = try box.run(tool, ["--db", box.db, "--backup-dir", box.backups], env: env, timeout: HygieneTests.hangGuard)
                XCTAssertEqual(run.status, 7, "\(tool), FIFO \(companion): \(run.stderr)")
                XCTAssertTrue(run.stderrLines.contains { $0.contains("\(path): is a FIFO") }, "\(tool): \(run.stderr)")
                XCTAssertEqual(try live(), before, "\(tool), FIFO \(companion)")
            }
        }
    }

    /// The other special files take the same row of SPEC.md's table: a directory, a device
    /// and a socket as `--db` (or integrity's PATH) are refused, one line, by every tool.
    func testDirectoryDeviceAndSocketAsDatabaseAreRefused() throws {
        let box = try Sandbox()
        let socket = box.root + "/sock.db"
        try makeSocket(socket)
        let directory = box.root + "/dir.db"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let env = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]
        for path in [socket, directory, "/dev/zero"] {
            for tool in HygieneTests.tools {
                let run = try box.run(tool, ["--db", path, "--backup-dir", box.backups], env: env, timeout: HygieneTests.hangGuard)
                assertRefused(run, tool)
                XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
            }
            let run = try box.run("abathur-integrity", ["--db", box.db, path], env: env, timeout: HygieneTests.hangGuard)
            assertRefused(run, "abathur-integrity")
            XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        }
    }

    // MARK: - Item 10: Prometheus textfiles

    struct Textfile {
        var samples: [String: String] = [:]
    }

    /// Parses a textfile by the exposition format's rules: HELP and TYPE once per family,
    /// before its samples, each family's samples together, no sample twice.
    func parseTextfile(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String: String] {
        var samples: [String: String] = [:]
        var finished: Set<String> = [], typed: Set<String> = [], helped: Set<String> = []
        var current: String?
        let metricName = try! NSRegularExpression(pattern: #"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (\S+)$"#)
        XCTAssertTrue(text.hasSuffix("\n"), file: file, line: line)
        for row in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let row = String(row)
            if row.hasPrefix("# HELP ") || row.hasPrefix("# TYPE ") {
                let parts = row.split(separator: " ", maxSplits: 3)
                XCTAssertGreaterThanOrEqual(parts.count, 4, row, file: file, line: line)
                let name = String(parts[2])
                XCTAssertFalse(finished.contains(name), "family \(name) split in two", file: file, line: line)
                if let current, current != name { finished.insert(current) }
                current = name
                if row.hasPrefix("# HELP ") { XCTAssertTrue(helped.insert(name).inserted, "second HELP for \(name)", file: file, line: line) }
                if row.hasPrefix("# TYPE ") {
                    XCTAssertTrue(typed.insert(name).inserted, "second TYPE for \(name)", file: file, line: line)
                    XCTAssertEqual(parts[3], "gauge", file: file, line: line)
                }
                continue
            }
            let range = NSRange(row.startIndex..., in: row)
            guard let match = metricName.firstMatch(in: row, range: range) else {
                XCTFail("not a sample line: \(row)", file: file, line: line)
                continue
            }
            let name = String(row[Range(match.range(at: 1), in: row)!])
            XCTAssertEqual(name, current, "sample of \(name) outside its family's group", file: file, line: line)
            let value = String(row[Range(match.range(at: 5), in: row)!])
            XCTAssertNotNil(Double(value) ?? (["+Inf", "-Inf", "NaN"].contains(value) ? 0 : nil), row, file: file, line: line)
            let key = String(row[..<row.lastIndex(of: " ")!])
            XCTAssertNil(samples[key], "sample \(key) twice", file: file, line: line)
            samples[key] = value
        }
        return samples
    }

    /// node_exporter runs as user prometheus: the textfile is 0644 whatever the umask, and
    /// written atomically (no temp file left beside it); every other file stays 0600.
    func testPrometheusTextfileIs0644AndValidWhateverTheUmask() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        let metrics = box.root + "/metrics"
        try FileManager.default.createDirectory(atPath: metrics, withIntermediateDirectories: false)
        let common = ["--db", box.db, "--backup-dir", box.backups]
        for mask in ["077", "000"] {
            let prom = metrics + "/backup-\(mask).prom"
            let run = try runShell(box, "abathur-backup", common + ["--prometheus", prom], redirect: "", umask: mask)
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(try mode(prom), 0o644, "umask \(mask)")
            let samples = parseTextfile(try String(contentsOfFile: prom, encoding: .utf8))
            XCTAssertEqual(samples[#"abathur_backup_last_exit_code{command="take"}"#], "0")
            XCTAssertEqual(samples["abathur_backup_verified_backups"], mask == "077" ? "1" : "2")
            for name in names(box.backups) where !name.hasPrefix(".abathur.lock") {
                XCTAssertEqual(try mode(box.backups + "/" + name), 0o600, "umask \(mask): \(name) stays 0600")
            }
        }
        // Integrity over two backups: the per-target samples of two families interleave as
        // they are added, and must still come out one family at a time.
        let prom = metrics + "/integrity.prom"
        let run = try runShell(box, "abathur-integrity", common + ["--all-backups", "--prometheus", prom], redirect: "", umask: "000")
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try mode(prom), 0o644)
        let samples = parseTextfile(try String(contentsOfFile: prom, encoding: .utf8))
        XCTAssertEqual(samples.keys.filter { $0.hasPrefix("abathur_integrity_severity{") }.count, 2, "\(samples)")
        XCTAssertEqual(names(metrics), ["backup-000.prom", "backup-077.prom", "integrity.prom"], "no temp file left")
    }

    // MARK: - Item 10: config-file bytes

    /// A config line with ESC, BEL, CR and bytes that are not UTF-8 is a usage error (exit 2)
    /// in one stderr line that names FILE:LINE and shows those bytes as escapes.
    func testConfigFileBytesAreEscapedInTheDiagnostic() throws {
        let box = try Sandbox()
        let lines: [[UInt8]] = [
            Array("# abathur.conf\n".utf8),
            Array("database = /tmp/x.db\n".utf8),
            Array("evil\u{1b}[2J\u{1b}]0;owned\u{07} = 1\r ".utf8) + [0xFF, 0xFE, 0x80] + Array("\n".utf8),
        ]
        let badUTF8 = lines.reduce([], +)
        let controlsOnly = lines[0] + lines[1] + Array("\u{1b}[31mno equals sign\u{07}\rhere\u{9b}2J\n".utf8)
        for (content, expected) in [(badUTF8, #"not valid UTF-8: "evil\x1b[2J\x1b]0;owned\x07 = 1\r \xff\xfe\x80""#),
                                    (controlsOnly, #"expected key = value, got "\x1b[31mno equals sign\x07\rhere\u{9B}2J""#)] {
            try Data(content).write(to: URL(fileURLWithPath: box.config))
            for tool in HygieneTests.tools {
                let run = try box.run(tool, ["--db", box.db, "--backup-dir", box.backups], timeout: HygieneTests.hangGuard)
                XCTAssertEqual(run.status, 2, "\(tool): \(run.stderr)")
                assertOneLine(run, "\(tool): error: \(box.config):3: ")
                XCTAssertTrue(run.stderr.hasSuffix(expected + "\n"), "\(tool): \(run.stderr)")
                let bytes = Array(run.stderr.utf8)
                XCTAssertFalse(bytes.dropLast().contains { $0 < 0x20 || $0 == 0x7F }, "no raw control byte: \(bytes)")
                XCTAssertNotNil(String(validating: bytes, as: UTF8.self))
            }
        }
    }

    /// A value is quoted escaped too, when a setting's value is rejected.
    func testInvalidSettingValueIsEscaped() throws {
        let box = try Sandbox()
        try Data("retention_days = 3\u{1b}[2J\n".utf8).write(to: URL(fileURLWithPath: box.config))
        let run = try box.run("abathur-backup", ["--db", box.db, "--backup-dir", box.backups])
        XCTAssertEqual(run.status, 2, run.stderr)
        XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains(#"retention_days="3\x1b[2J""#), run.stderr)
        XCTAssertFalse(run.stderr.utf8.contains(0x1B))
    }
}
