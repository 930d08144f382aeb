import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, item 8: temp files of killed runs. A SIGTERM or SIGINT removes the run's own temp
/// files before it exits with 128 + the signal; what a SIGKILL leaves is swept by the next run
/// of any tool, from every directory the tools write temp files to, while the temp files of a
/// process that still runs, names whose pid does not parse, and symlinks are left alone.
final class TempSweepTests: XCTestCase {
    static let prefix = ".abathur-tmp-"

    func environment(_ box: Sandbox, _ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ABATHUR_") && $0.key != "JOURNAL_STREAM" }
        env["ABATHUR_CONFIG"] = box.config
        env["ABATHUR_SERVICES"] = ""
        env["ABATHUR_HEALTH_URL"] = ""
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Starts a tool with stdin from a pipe the test holds and stderr into a file.
    func start(_ box: Sandbox, _ tool: String, _ args: [String], env: [String: String] = [:]) throws -> (Process, Pipe, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.tool(tool))
        process.arguments = args
        process.environment = environment(box, env)
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        let errPath = box.root + "/stderr-\(UUID().uuidString.prefix(6))"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
        return (process, input, errPath)
    }

    func temps(in dir: String, pid: Int32? = nil, tag: String = "") -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasPrefix(Self.prefix + (pid.map { "\($0)-" } ?? "")) && $0.hasSuffix(tag) }
    }

    /// Polls (every millisecond, up to a minute) until `pid` has a temp file tagged `tag` in `dir`.
    func waitForTemp(in dir: String, pid: Int32, tag: String) -> String? {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let name = temps(in: dir, pid: pid, tag: tag).first { return name }
            usleep(1000)
        }
        return nil
    }

    func deadPid() throws -> Int32 {
        let exited = try Sandbox.execute("/bin/sh", ["-c", "echo $$"])
        return try XCTUnwrap(Int32(exited.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// A restore reading `-` from a pipe that the test holds open: the run is deterministically
    /// mid-decompress when signalled (half the stream written, its candidate beside the live
    /// database). The signal removes the candidate; the exit status is 128 + the signal; the
    /// live files are untouched.
    func testSIGTERMAndSIGINTDuringARestoreDecompressRemoveTheCandidate() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 2000)
        XCTAssertEqual(try box.backup().status, 0)
        let gz = try Data(contentsOf: URL(fileURLWithPath: box.backups + "/" + XCTUnwrap(try box.backupFiles().last)))
        let before = try box.fingerprint(box.liveDir).filter { !$0.key.hasPrefix(".abathur") }
        for signal in [SIGTERM, SIGINT, SIGHUP] {
            let (process, input, errPath) = try start(box, "abathur-restore", ["--db", box.db, "--backup-dir", box.backups, "-"])
            input.fileHandleForWriting.write(gz.prefix(gz.count / 2))
            let temp = waitForTemp(in: box.liveDir, pid: process.processIdentifier, tag: "-restore.db")
            XCTAssertNotNil(temp, "the restore never started writing its candidate")
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            try? input.fileHandleForWriting.close()
            let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            XCTAssertEqual(process.terminationReason, .exit, "signal \(signal): killed instead of exiting: \(stderr)")
            XCTAssertEqual(process.terminationStatus, 128 + signal, stderr)
            XCTAssertTrue(stderr.contains("abathur-restore: error: interrupted by SIG"), stderr)
            XCTAssertEqual(temps(in: box.liveDir), [], "signal \(signal): the candidate is left")
            XCTAssertEqual(try box.fingerprint(box.liveDir).filter { !$0.key.hasPrefix(".abathur") }, before)
        }
    }

    /// A run started with SIGHUP ignored (`nohup`) keeps ignoring it.
    func testASignalInheritedAsIgnoredStaysIgnored() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 2000)
        XCTAssertEqual(try box.backup().status, 0)
        let gz = try Data(contentsOf: URL(fileURLWithPath: box.backups + "/" + XCTUnwrap(try box.backupFiles().last)))
        let args = ["--db", box.db, "--backup-dir", box.backups, "-"].map { "'\($0)'" }.joined(separator: " ")
        let errPath = box.root + "/stderr-nohup"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "trap '' HUP; exec '\(Binaries.tool("abathur-restore"))' \(args)"]
        shell.environment = environment(box)
        let pipe = Pipe()
        shell.standardInput = pipe
        shell.standardOutput = FileHandle.nullDevice
        shell.standardError = FileHandle(forWritingAtPath: errPath)
        try shell.run()
        pipe.fileHandleForWriting.write(gz.prefix(gz.count / 2))
        XCTAssertNotNil(waitForTemp(in: box.liveDir, pid: shell.processIdentifier, tag: "-restore.db"))
        kill(shell.processIdentifier, SIGHUP)
        // Still running: the rest of the stream is read and the backup restored.
        pipe.fileHandleForWriting.write(gz.suffix(from: gz.count / 2))
        try pipe.fileHandleForWriting.close()
        shell.waitUntilExit()
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        XCTAssertEqual(shell.terminationReason, .exit, stderr)
        XCTAssertEqual(shell.terminationStatus, 0, stderr)
        XCTAssertEqual(temps(in: box.liveDir), [])
    }

    /// Integrity inflating a `.gz` into temp_dir: stopped (SIGSTOP) once its temp file exists,
    /// then SIGTERM and SIGCONT. The inflated copy goes; the exit status is 143.
    func testSIGTERMDuringIntegrityInflatingABackupRemovesTheInflatedCopy() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 20000)
        XCTAssertEqual(try box.backup().status, 0)
        let gz = box.backups + "/" + (try XCTUnwrap(try box.backupFiles().last))
        let temp = box.root + "/tmp"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        let (process, _, errPath) = try start(box, "abathur-integrity", ["--db", box.db, "--backup-dir", box.backups, gz],
                                              env: ["ABATHUR_TEMP_DIR": temp])
        let found = waitForTemp(in: temp, pid: process.processIdentifier, tag: "-integrity.db")
        kill(process.processIdentifier, SIGSTOP)
        XCTAssertNotNil(found, "integrity never started inflating")
        XCTAssertEqual(temps(in: temp, pid: process.processIdentifier).count, 1, "stopped while its inflated copy exists")
        kill(process.processIdentifier, SIGTERM)
        kill(process.processIdentifier, SIGCONT)
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        XCTAssertEqual(process.terminationReason, .exit, stderr)
        XCTAssertEqual(process.terminationStatus, 128 + SIGTERM, stderr)
        XCTAssertEqual(temps(in: temp), [], "the inflated copy is left")
    }

    /// What SIGKILLed runs leave (a real integrity run killed mid-inflate, and planted names
    /// with a dead pid) is swept by the next run of every tool, from temp_dir, the backup
    /// directory, its safety directory, the incident directory, the database's directory and
    /// the textfile directory. Kept: a live process's temp files, names whose pid does not
    /// parse, symlinks under our prefix, and directories in the database's directory.
    func testTheNextRunOfEveryToolSweepsWhatKilledRunsLeftEverywhere() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 20000)
        XCTAssertEqual(try box.backup().status, 0)
        let gz = box.backups + "/" + (try XCTUnwrap(try box.backupFiles().last))
        let fm = FileManager.default
        let temp = box.root + "/tmp", incidents = box.root + "/incidents", metrics = box.root + "/metrics"
        let safety = box.backups + "/safety"
        for dir in [temp, incidents, metrics, safety] { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let env = ["ABATHUR_TEMP_DIR": temp, "ABATHUR_INCIDENT_DIR": incidents, "ABATHUR_PROMETHEUS_DIR": metrics]

        // A real kill: integrity SIGKILLed while its inflated copy exists.
        let (process, _, _) = try start(box, "abathur-integrity", ["--db", box.db, "--backup-dir", box.backups, gz], env: env)
        XCTAssertNotNil(waitForTemp(in: temp, pid: process.processIdentifier, tag: "-integrity.db"))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(temps(in: temp, pid: process.processIdentifier).count, 1, "the SIGKILLed run left its copy")
        XCTAssertEqual(try box.run("abathur-backup", ["status", "--backup-dir", box.backups, "--db", box.db], env: env).status, 0)
        XCTAssertEqual(temps(in: temp), [], "the next run of another tool swept it")

        let victim = box.root + "/victim"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        let dead = try deadPid()
        let everywhere = [temp, box.backups, safety, incidents, box.liveDir, metrics]
        let ownedByOthers: Set<String> = [box.liveDir, metrics]
        func plant() throws {
            for dir in everywhere {
                try Data(count: 4096).write(to: URL(fileURLWithPath: "\(dir)/\(Self.prefix)\(dead)-ab12-integrity.db"))
                try Data(count: 10).write(to: URL(fileURLWithPath: "\(dir)/\(Self.prefix)\(getpid())-cd34-integrity.db"))
                try Data(count: 10).write(to: URL(fileURLWithPath: "\(dir)/\(Self.prefix)x1-ef56-restore.db"))
                try? fm.removeItem(atPath: "\(dir)/\(Self.prefix)\(dead)-0bad-link")
                try fm.createSymbolicLink(atPath: "\(dir)/\(Self.prefix)\(dead)-0bad-link", withDestinationPath: victim)
                let scratch = "\(dir)/\(Self.prefix)\(dead)-9f9f-drill"
                try fm.createDirectory(atPath: scratch + "/\(Self.prefix)\(dead)-1111-live-copy", withIntermediateDirectories: true)
                try Data(count: 4096).write(to: URL(fileURLWithPath: scratch + "/abathur.db"))
                try Data(count: 4096).write(to: URL(fileURLWithPath: scratch + "/\(Self.prefix)\(dead)-1111-live-copy/abathur.db-wal"))
            }
        }
        let runs: [(String, [String])] = [
            ("abathur-backup", ["status"]), ("abathur-backup", ["verify"]), ("abathur-backup", ["prune"]), ("abathur-backup", []),
            ("abathur-integrity", []), ("abathur-restore", ["--list"]), ("abathur-restore", ["--drill"]),
        ]
        for (tool, args) in runs {
            try plant()
            let run = try box.run(tool, args + ["--db", box.db, "--backup-dir", box.backups], env: env.merging(["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]) { $1 })
            let what = "\(tool) \(args.joined(separator: " "))"
            XCTAssertTrue(run.status == 0 || run.status == 1, "\(what): \(run.stderr)")
            for dir in everywhere {
                let left = Set(temps(in: dir))
                XCTAssertFalse(left.contains("\(Self.prefix)\(dead)-ab12-integrity.db"), "\(what): a dead run's file is left in \(dir)")
                XCTAssertTrue(left.contains("\(Self.prefix)\(getpid())-cd34-integrity.db"), "\(what): a live run's file was removed from \(dir)")
                XCTAssertTrue(left.contains("\(Self.prefix)x1-ef56-restore.db"), "\(what): a name without a pid was removed from \(dir)")
                XCTAssertEqual(try fm.destinationOfSymbolicLink(atPath: "\(dir)/\(Self.prefix)\(dead)-0bad-link"), victim, "\(what): \(dir)")
                XCTAssertEqual(left.contains("\(Self.prefix)\(dead)-9f9f-drill"), ownedByOthers.contains(dir),
                               "\(what): a dead run's temp directory in \(dir) (kept only where someone else owns the directory)")
            }
            XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
        }
    }
}
