import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-restore` against real processes (SPEC.md `abathur-restore`; FACTS.md 7-11): a
/// stale hot WAL is kept in the safety copy and never replayed onto the restored file; a
/// process holding the database refuses the swap and changes nothing; the units are stopped
/// before the swap and started after it; a failed health check rolls back to the database as
/// it was; and a crash at any point leaves the old database or the new one, never a mix.
///
/// The machine has no abathur units: a fake `systemctl` first on PATH logs each call with the
/// SHA-256 of the database file at that moment, so the log shows when the swap happened.
/// Live files are only ever inspected through copies (opening them would checkpoint).
final class RestoreSafetyTests: XCTestCase {
    static let units = "abathur-api abathur-workers abathur-document-sync"
    static let tables = ["agents", "audit", "checkpoints", "document_embeddings", "document_embeddings_data",
                         "document_index", "memory_entries", "metrics", "sessions", "state", "tasks"]
    /// Not a table: how many tasks a later transaction retitled (see `commitLater`).
    static let retitled = "tasks retitled later"
    static let lockName = ".abathur.db.abathur-lock"

    // MARK: - The world

    /// A sandbox with a fake `systemctl` in `root/bin` that appends "ARGS SHA256" to
    /// `systemctlLog`, SHA256 being the database file's hash when it was called.
    func makeBox(_ name: String = #function) throws -> Sandbox {
        try Sandbox.withStandInSystemctl(name)
    }

    func systemctlLog(_ box: Sandbox) -> String { box.systemctlLog }

    /// The fake systemctl's calls so far, one "ARGS SHA256" line each.
    func systemctlCalls(_ box: Sandbox) -> [String] { box.systemctlCalls }

    func environment(_ box: Sandbox, _ extra: [String: String] = [:]) -> [String: String] {
        var env = ["PATH": box.root + "/bin:/usr/bin:/bin", "ABATHUR_HEALTH_URL": ""]
        for (key, value) in extra { env[key] = value }
        return env
    }

    @discardableResult
    func restore(_ box: Sandbox, _ args: [String] = [], env: [String: String] = [:]) throws -> Run {
        try box.run("abathur-restore", ["--db", box.db, "--backup-dir", box.backups] + args, env: environment(box, env))
    }

    struct Backup {
        var name: String
        var sha256: String
        var rowCounts: [String: Int]
        /// What a copy of the restored database must contain (`contents`).
        var contents: [String: Int] { rowCounts.merging([RestoreSafetyTests.retitled: 0]) { a, _ in a } }
    }

    func takeBackup(_ box: Sandbox, file: StaticString = #filePath, line: UInt = #line) throws -> Backup {
        let name = try box.takeBackup(file: file, line: line)
        let manifest = try box.manifest(name)
        let sha = try XCTUnwrap((manifest["database"] as? [String: Any])?["sha256"] as? String, file: file, line: line)
        let counts = try XCTUnwrap(manifest["row_counts"] as? [String: Int], file: file, line: line)
        XCTAssertEqual(counts.keys.sorted(), Self.tables, file: file, line: line)
        return Backup(name: name, sha256: sha, rowCounts: counts)
    }

    /// Commits `rows` rows into `state` and `metrics` (and, with `retitle`, rewrites every
    /// task's title in one more transaction) from a process that exits without closing SQLite
    /// and with automatic checkpoints off: the commits stay in a hot `-wal` (FACTS.md 7).
    func commitLater(_ box: Sandbox, rows: Int, retitle: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        try DyingWriter.run(box.db, """
        for i in range(int(sys.argv[2])):
            c.execute("BEGIN")
            c.execute("INSERT INTO state(key, value, updated_at) VALUES (?, 'later commit', datetime('now'))", ('later-%d' % i,))
            c.execute("INSERT INTO metrics(name, value, labels, agent_id, recorded_at) VALUES ('later', ?, '{}', 'agent-1', datetime('now'))", (i,))
            c.execute("COMMIT")
        if sys.argv[3] == '1':
            c.execute("UPDATE tasks SET title = 'hot ' || title")
        """, args: ["\(rows)", retitle ? "1" : "0"], file: file, line: line)
        for suffix in ["-wal", "-shm"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: box.db + suffix), "a hot \(suffix) was expected", file: file, line: line)
        }
    }

    /// Copies the database at `path` (default: the live one) and its `-wal`, if any, with cp
    /// into a fresh directory and returns the copy. SQLite only ever opens the copy.
    func inspectionCopy(_ box: Sandbox, of path: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let source = path ?? box.db
        let dir = box.root + "/inspect-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let copy = dir + "/copy.db"
        XCTAssertEqual(try Sandbox.execute("/bin/cp", [source, copy]).status, 0, file: file, line: line)
        if FileManager.default.fileExists(atPath: source + "-wal") {
            XCTAssertEqual(try Sandbox.execute("/bin/cp", [source + "-wal", copy + "-wal"]).status, 0, file: file, line: line)
        }
        return copy
    }

    /// Row counts per table of a copy, plus how many tasks a later transaction retitled.
    func contents(_ copy: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Int] {
        let sql = Self.tables.map { "SELECT '\($0)', count(*) FROM \($0)" }.joined(separator: " UNION ALL ")
            + " UNION ALL SELECT '\(Self.retitled)', count(*) FROM tasks WHERE title LIKE 'hot %'"
        let run = try Sandbox.execute("/usr/bin/sqlite3", [copy, sql])
        XCTAssertEqual(run.status, 0, "sqlite3 \(copy): \(run.stderr)", file: file, line: line)
        var counts: [String: Int] = [:]
        for row in run.stdout.split(separator: "\n") {
            let parts = row.split(separator: "|")
            if parts.count == 2, let n = Int(parts[1]) { counts[String(parts[0])] = n }
        }
        return counts
    }

    /// The whole logical content of a copy, as `sqlite3 .dump` prints it.
    func dump(_ copy: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try Sandbox.execute("/usr/bin/sqlite3", [copy, ".dump"])
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        return run.stdout
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// The live directory byte for byte, without the tool's lock file.
    func liveFiles(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.liveDir).filter { $0.key != Self.lockName }
    }

    /// Every stored backup and manifest, and SHA256SUMS, byte for byte.
    func storedBackups(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.backups).filter { $0.key.hasSuffix(".db.gz") || $0.key.hasSuffix(".json") || $0.key == "SHA256SUMS" }
    }

    /// Safety copy directories (final names only), sorted.
    func safetyCopies(_ box: Sandbox) throws -> [String] {
        let root = box.backups + "/safety"
        guard exists(root) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: root).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Temp files of ours left anywhere the restore writes.
    func leftovers(_ box: Sandbox) throws -> [String] {
        var found: [String] = []
        for dir in [box.liveDir, box.backups, box.backups + "/safety", box.backups + "/incidents"] where exists(dir) {
            found += try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".abathur-tmp-") }.map { dir + "/" + $0 }
        }
        return found
    }

    func poll(_ what: String, timeout: TimeInterval = 20, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            guard Date() < deadline else { throw NSError(domain: "RestoreSafetyTests", code: 1, userInfo: [NSLocalizedDescriptionKey: "timed out waiting for \(what)"]) }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// Does process `pid` have the file at `path` open (a /proc/PID/fd entry with its device
    /// and inode)?
    func hasOpen(_ pid: Int32, _ path: String) -> Bool {
        var target = stat()
        guard stat(path, &target) == 0 else { return false }
        let dir = "/proc/\(pid)/fd"
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return fds.contains { fd in
            var st = stat()
            return stat(dir + "/" + fd, &st) == 0 && st.st_dev == target.st_dev && st.st_ino == target.st_ino
        }
    }

    func launch(_ path: String, _ args: [String], stdout: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout ?? FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func stop(_ process: Process) {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// A process with a real SQLite connection to the database: it reads a table, then says
    /// "ready" (a file) and sleeps with the connection open.
    func startHolder(_ box: Sandbox) throws -> Process {
        let ready = box.root + "/holder-ready"
        let script = """
        import sqlite3, sys, time, os
        c = sqlite3.connect(sys.argv[1])
        c.execute('SELECT count(*) FROM tasks').fetchone()
        with open(sys.argv[2] + '.tmp', 'w') as f:
            f.write('ready')
        os.rename(sys.argv[2] + '.tmp', sys.argv[2])
        time.sleep(60)
        """
        let holder = try launch("/usr/bin/python3", ["-c", script, box.db, ready])
        try poll("the holder to open the database") { exists(ready) || !holder.isRunning }
        XCTAssertTrue(holder.isRunning, "the holder died before it was ready")
        return holder
    }

    struct HealthServer {
        var process: Process
        var url: String
        var hitsFile: String
        var hits: Int {
            ((try? String(contentsOfFile: hitsFile, encoding: .utf8)) ?? "").split(separator: "\n").count
        }
    }

    /// A loopback HTTP server on a free port that answers every GET with `status` and logs it.
    func startHealthServer(_ box: Sandbox, status: Int) throws -> HealthServer {
        let tag = UUID().uuidString.prefix(8)
        let portFile = box.root + "/health-port-\(tag)", hits = box.root + "/health-hits-\(tag)"
        let script = """
        import http.server, os, sys
        status, port_file, hits = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with open(hits, 'a') as f:
                    f.write(self.path + '\\n')
                body = b'{"status": "healthy"}' if status == 200 else b'{"status": "unhealthy"}'
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
        with open(port_file + '.tmp', 'w') as f:
            f.write(str(server.server_address[1]))
        os.rename(port_file + '.tmp', port_file)
        server.serve_forever()
        """
        let process = try launch("/usr/bin/python3", ["-c", script, "\(status)", portFile, hits])
        try poll("the health server's port") { exists(portFile) || !process.isRunning }
        let port = try XCTUnwrap(Int(try String(contentsOfFile: portFile, encoding: .utf8)), "the health server did not start")
        return HealthServer(process: process, url: "http://127.0.0.1:\(port)/health", hitsFile: hits)
    }

    /// The incident records (`.json`) written so far, parsed, oldest first.
    func incidents(_ box: Sandbox) throws -> [[String: Any]] {
        let dir = box.backups + "/incidents"
        guard exists(dir) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted().map {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0))) as! [String: Any]
        }
    }

    // MARK: - 1. A stale hot WAL

    /// The service crashed with later commits in its `-wal`: the restore keeps db, -wal and
    /// -shm byte for byte in the safety copy, and the restored file is exactly the backup (the
    /// stale WAL is not replayed onto it, FACTS.md 8), with the old file's owner and mode.
    func testStaleHotWALIsKeptInTheSafetyCopyAndNeverReplayedOntoTheRestoredFile() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        let backup = try takeBackup(box)
        try commitLater(box, rows: 40)
        XCTAssertEqual(chown(box.db, 65534, 65534), 0, "chown nobody:nogroup")
        XCTAssertEqual(chmod(box.db, 0o640), 0)
        let before = try liveFiles(box)
        XCTAssertEqual(Set(before.keys), ["abathur.db", "abathur.db-wal", "abathur.db-shm"])
        let oldContents = try contents(try inspectionCopy(box))
        XCTAssertEqual(oldContents["state"], backup.rowCounts["state"]! + 40, "the later commits are in the hot WAL")
        let backupsBefore = try storedBackups(box)

        let run = try restore(box)
        XCTAssertEqual(run.status, 0, run.stderr)

        XCTAssertEqual(try box.sha256(box.db), backup.sha256, "the restored file is the backup's database, byte for byte")
        for suffix in ["-wal", "-shm", "-journal"] {
            XCTAssertFalse(exists(box.db + suffix), "\(suffix) beside the restored database")
        }
        let copy = try inspectionCopy(box)
        XCTAssertEqual(try contents(copy), backup.contents, "row counts equal the manifest's: the stale WAL was not replayed")
        let check = try box.demo(["check", copy])
        XCTAssertEqual(check.status, 0, check.stderr)

        let attributes = try FileManager.default.attributesOfItem(atPath: box.db)
        XCTAssertEqual((attributes[.ownerAccountID] as? NSNumber)?.intValue, 65534, "owner kept")
        XCTAssertEqual((attributes[.groupOwnerAccountID] as? NSNumber)?.intValue, 65534, "group kept")
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o640, "mode kept")

        let copies = try safetyCopies(box)
        XCTAssertEqual(copies.count, 1, "\(copies)")
        let safety = try XCTUnwrap(copies.first)
        XCTAssertTrue(safety.hasSuffix("-restore"), safety)
        XCTAssertEqual(try box.fingerprint(box.backups + "/safety/" + safety), before,
                       "the safety copy holds db, -wal and -shm exactly as they were, later commits included")
        let kept = try contents(try inspectionCopy(box, of: box.backups + "/safety/" + safety + "/abathur.db"))
        XCTAssertEqual(kept, oldContents, "the safety copy opens as the database as it was")

        XCTAssertEqual(try storedBackups(box), backupsBefore, "the backups are untouched")
        XCTAssertEqual(try leftovers(box), [])
        XCTAssertTrue(run.stdout.contains("safety copy: \(box.backups)/safety/\(safety)"), run.stdout)
    }

    // MARK: - 2. Something still holds the database

    /// A real SQLite connection in another process: exit 7 naming its pid, and nothing changes;
    /// the units are started again.
    func testAnOpenConnectionInAnotherProcessRefusesTheRestoreAndChangesNothing() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        _ = try takeBackup(box)
        try commitLater(box, rows: 20)
        let holder = try startHolder(box)
        defer { stop(holder) }
        let before = try liveFiles(box)
        let oldHash = try XCTUnwrap(before["abathur.db"])
        let backupsBefore = try storedBackups(box)

        let run = try restore(box)
        XCTAssertEqual(run.status, 7, "refused: \(run.stderr)")
        XCTAssertTrue(run.stderr.contains("pid \(holder.processIdentifier)"), "stderr names the holder's pid: \(run.stderr)")
        XCTAssertTrue(holder.isRunning)

        XCTAssertEqual(try liveFiles(box), before, "db, -wal and -shm byte-identical; nothing moved aside or left behind")
        XCTAssertEqual(try storedBackups(box), backupsBefore)
        XCTAssertEqual(try safetyCopies(box), [], "refused before any safety copy or swap")
        XCTAssertEqual(try leftovers(box), [])
        XCTAssertEqual(systemctlCalls(box), ["stop -- \(Self.units) \(oldHash)", "start -- \(Self.units) \(oldHash)"],
                       "units stopped, and started again after the refusal")
        let record = try XCTUnwrap(try incidents(box).last, "a refused restore still writes its incident record")
        XCTAssertEqual((record["outcome"] as? [String: Any])?["result"] as? String, "refused")
        XCTAssertEqual(record["exit_code"] as? Int, 7)
    }

    /// The demo writer committing while the restore runs: exit 7 naming its pid, the database
    /// is never replaced, and every one of the writer's commits is there afterwards.
    func testARunningWriterRefusesTheRestoreAndLosesNoCommit() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        _ = try takeBackup(box)
        let inode = try XCTUnwrap((try FileManager.default.attributesOfItem(atPath: box.db))[.systemFileNumber] as? NSNumber)
        let backupsBefore = try storedBackups(box)
        let output = Pipe()
        let writer = try launch(Binaries.demo, ["write", box.db, "--seconds", "3", "--rate", "100"], stdout: output)
        defer { stop(writer) }
        try poll("the writer to open the database") { hasOpen(writer.processIdentifier, box.db) || !writer.isRunning }
        XCTAssertTrue(writer.isRunning, "the writer ended before it opened the database")

        let run = try restore(box)
        XCTAssertTrue(writer.isRunning, "the restore must have run while the writer was writing")
        XCTAssertEqual(run.status, 7, "refused: \(run.stderr)")
        XCTAssertTrue(run.stderr.contains("pid \(writer.processIdentifier)"), "stderr names the writer's pid: \(run.stderr)")

        writer.waitUntilExit()
        XCTAssertEqual(writer.terminationStatus, 0, "the writer never saw an error")
        let written = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertGreaterThan(Int(written) ?? 0, 0)
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: box.db))[.systemFileNumber] as? NSNumber, inode,
                       "the database file was never replaced")
        let copy = try inspectionCopy(box)
        let check = try box.demo(["check", copy])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertEqual(try box.demo(["seq", copy]).stdout.trimmingCharacters(in: .whitespacesAndNewlines), written,
                       "every commit the writer made is in the database")
        XCTAssertEqual(Set(try liveFiles(box).keys).subtracting(["abathur.db-wal", "abathur.db-shm"]), ["abathur.db"],
                       "nothing moved aside, no candidate left")
        XCTAssertEqual(try storedBackups(box), backupsBefore)
        XCTAssertEqual(try safetyCopies(box), [])
        XCTAssertEqual(try leftovers(box), [])
        XCTAssertEqual(systemctlCalls(box).map { $0.split(separator: " ").prefix(5).joined(separator: " ") },
                       ["stop -- \(Self.units)", "start -- \(Self.units)"])
    }

    /// `--force` swaps although a process holds the database, and says so.
    func testForceSwapsAlthoughAProcessHoldsTheDatabase() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        let backup = try takeBackup(box)
        try commitLater(box, rows: 20)
        let holder = try startHolder(box)
        defer { stop(holder) }
        let before = try liveFiles(box)

        let run = try restore(box, ["--force"])
        XCTAssertEqual(run.status, 1, "restored, with a warning that needs a look: \(run.stderr)")
        XCTAssertTrue(run.stderr.contains("--force"), "a warning names the override: \(run.stderr)")
        XCTAssertEqual(run.stderrLines.filter { $0.contains("--force") }.count, 1, "said once: \(run.stderr)")
        XCTAssertTrue(run.stderr.contains("pid \(holder.processIdentifier)"), run.stderr)
        XCTAssertEqual(try box.sha256(box.db), backup.sha256)
        XCTAssertFalse(exists(box.db + "-wal"))
        let safety = try XCTUnwrap(try safetyCopies(box).first)
        XCTAssertEqual(try box.fingerprint(box.backups + "/safety/" + safety), before)
    }

    // MARK: - 3. Units around the swap

    /// stop, then the swap, then start: the fake systemctl sees the old database at stop and
    /// the restored one at start. `--no-services` calls nothing.
    func testUnitsAreStoppedBeforeTheSwapAndStartedAfterIt() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        let backup = try takeBackup(box)
        try commitLater(box, rows: 20)
        let oldHash = try box.sha256(box.db)
        XCTAssertNotEqual(oldHash, backup.sha256)

        let run = try restore(box)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(systemctlCalls(box), ["stop -- \(Self.units) \(oldHash)", "start -- \(Self.units) \(backup.sha256)"])

        try FileManager.default.removeItem(atPath: systemctlLog(box))
        let quiet = try restore(box, ["--no-services"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertFalse(exists(systemctlLog(box)), "--no-services: no systemctl call at all: \(systemctlCalls(box))")
        XCTAssertEqual(try box.sha256(box.db), backup.sha256)

        let configured = try restore(box, [], env: ["ABATHUR_SERVICES": "abathur-api,abathur-workers"])
        XCTAssertEqual(configured.status, 0, configured.stderr)
        XCTAssertEqual(systemctlCalls(box), ["stop -- abathur-api abathur-workers \(backup.sha256)",
                                             "start -- abathur-api abathur-workers \(backup.sha256)"])
    }

    // MARK: - 4. Automatic rollback

    /// The health endpoint answers 500: the restore rolls back to the database as it was,
    /// later commits of its hot WAL included, exits 3 and records it; 200 restores.
    func testAFailingHealthCheckRollsBackToTheDatabaseAsItWas() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        let backup = try takeBackup(box)
        try commitLater(box, rows: 40)
        let before = try liveFiles(box)
        let oldHash = try XCTUnwrap(before["abathur.db"])
        let original = try inspectionCopy(box)
        let originalContents = try contents(original)
        let originalDump = try dump(original)
        XCTAssertNotEqual(originalContents, backup.contents)
        let backupsBefore = try storedBackups(box)

        let failing = try startHealthServer(box, status: 500)
        defer { stop(failing.process) }
        let health = ["ABATHUR_HEALTH_URL": failing.url, "ABATHUR_HEALTH_RETRIES": "2", "ABATHUR_HEALTH_INTERVAL": "0.2s"]
        let run = try restore(box, [], env: health)
        XCTAssertEqual(run.status, 3, "rolled back: \(run.stderr)")
        XCTAssertTrue(run.stderr.contains("rolled back"), run.stderr)
        XCTAssertEqual(failing.hits, 2, "ABATHUR_HEALTH_RETRIES=2 attempts")

        for suffix in ["-wal", "-shm", "-journal"] {
            XCTAssertFalse(exists(box.db + suffix), "stale \(suffix) beside the rolled-back database")
        }
        let back = try inspectionCopy(box)
        XCTAssertEqual(try contents(back), originalContents, "row counts of the database as it was, hot WAL commits included")
        XCTAssertEqual(try dump(back), originalDump, "the database as it was, logically identical")
        let check = try box.demo(["check", back])
        XCTAssertEqual(check.status, 0, check.stderr)
        let rolledBackHash = try box.sha256(box.db)
        XCTAssertNotEqual(rolledBackHash, backup.sha256)

        let calls = systemctlCalls(box)
        XCTAssertEqual(calls, ["stop -- \(Self.units) \(oldHash)", "start -- \(Self.units) \(backup.sha256)",
                               "stop -- \(Self.units) \(backup.sha256)", "start -- \(Self.units) \(rolledBackHash)"],
                       "stop, swap, start, health fails, stop, swap back, start")

        let copies = try safetyCopies(box)
        let first = try XCTUnwrap(copies.first { $0.hasSuffix("-restore") && !$0.hasSuffix("-rolled-back-restore") }, "\(copies)")
        let second = try XCTUnwrap(copies.first { $0.hasSuffix("-rolled-back-restore") }, "\(copies)")
        XCTAssertEqual(copies.count, 2, "\(copies)")
        XCTAssertEqual(try box.fingerprint(box.backups + "/safety/" + first), before, "the database as it was, raw")
        XCTAssertEqual(try box.fingerprint(box.backups + "/safety/" + second), ["abathur.db": backup.sha256],
                       "the restored database that failed its health check")

        let records = try incidents(box)
        XCTAssertEqual(records.count, 1)
        let record = try XCTUnwrap(records.first)
        XCTAssertEqual(record["exit_code"] as? Int, 3)
        let outcome = try XCTUnwrap(record["outcome"] as? [String: Any])
        XCTAssertEqual(outcome["result"] as? String, "rolled back")
        XCTAssertEqual(outcome["rolled_back"] as? Bool, true)
        let markdown = try FileManager.default.contentsOfDirectory(atPath: box.backups + "/incidents").filter { $0.hasSuffix(".md") }
        XCTAssertEqual(markdown.count, 1)
        let text = try String(contentsOfFile: box.backups + "/incidents/" + markdown[0], encoding: .utf8)
        XCTAssertTrue(text.contains("rolled back"), text)
        XCTAssertTrue((run.stdout + run.stderr).contains("incident record: \(box.backups)/incidents/\(markdown[0])"), run.stdout)
        XCTAssertEqual(try storedBackups(box), backupsBefore)
        XCTAssertEqual(try leftovers(box), [])

        // A healthy service: the same restore goes through.
        let healthy = try startHealthServer(box, status: 200)
        defer { stop(healthy.process) }
        try FileManager.default.removeItem(atPath: systemctlLog(box))
        let good = try restore(box, [], env: health.merging(["ABATHUR_HEALTH_URL": healthy.url]) { _, b in b })
        XCTAssertEqual(good.status, 0, good.stderr)
        XCTAssertEqual(healthy.hits, 1)
        XCTAssertEqual(try box.sha256(box.db), backup.sha256)
        XCTAssertEqual(systemctlCalls(box), ["stop -- \(Self.units) \(rolledBackHash)", "start -- \(Self.units) \(backup.sha256)"])
    }

    /// `health_command` instead of a URL: exit 1 rolls back (exit 3), exit 0 restores.
    func testAHealthCommandDecidesBetweenRollbackAndSuccess() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        let backup = try takeBackup(box)
        try commitLater(box, rows: 30)
        let originalContents = try contents(try inspectionCopy(box))

        let failed = try restore(box, [], env: ["ABATHUR_HEALTH_COMMAND": "/bin/false", "ABATHUR_HEALTH_RETRIES": "1"])
        XCTAssertEqual(failed.status, 3, failed.stderr)
        XCTAssertTrue(failed.stderr.contains("rolled back"), failed.stderr)
        XCTAssertFalse(exists(box.db + "-wal"))
        let back = try inspectionCopy(box)
        XCTAssertEqual(try contents(back), originalContents)
        XCTAssertEqual(try box.demo(["check", back]).status, 0)
        XCTAssertEqual(systemctlCalls(box).map { String($0.prefix(5)) }, ["stop ", "start", "stop ", "start"])

        let passed = try restore(box, [], env: ["ABATHUR_HEALTH_COMMAND": "/bin/true", "ABATHUR_HEALTH_RETRIES": "1"])
        XCTAssertEqual(passed.status, 0, passed.stderr)
        XCTAssertEqual(try box.sha256(box.db), backup.sha256)
        XCTAssertFalse(exists(box.db + "-wal"))
    }

    // MARK: - 5. Crash safety

    enum State: String { case old, new }

    /// After a crash the database path holds the old database (a copy of db + -wal opens with
    /// the old content) or the new one (the manifest's hash, and no -wal beside it): never the
    /// new database with the old -wal, never anything else. nil (and a failure) otherwise.
    func classify(_ box: Sandbox, _ backup: Backup, old: [String: Int], _ context: String,
                  file: StaticString = #filePath, line: UInt = #line) throws -> State? {
        guard exists(box.db) else {
            XCTFail("\(context): no database at \(box.db)", file: file, line: line)
            return nil
        }
        if try box.sha256(box.db) == backup.sha256 {
            XCTAssertFalse(exists(box.db + "-wal"), "\(context): the new database with the old -wal beside it", file: file, line: line)
            XCTAssertFalse(exists(box.db + "-journal"), "\(context): the new database with a -journal beside it", file: file, line: line)
            return exists(box.db + "-wal") || exists(box.db + "-journal") ? nil : .new
        }
        let copy = try inspectionCopy(box, file: file, line: line)
        let seen = try contents(copy, file: file, line: line)
        XCTAssertEqual(seen, old, "\(context): neither the old database nor the new one", file: file, line: line)
        let check = try box.demo(["check", copy])
        XCTAssertEqual(check.status, 0, "\(context): \(check.stderr)", file: file, line: line)
        let integrity = try Sandbox.execute("/usr/bin/sqlite3", [copy, "PRAGMA integrity_check"])
        XCTAssertEqual(integrity.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "ok", "\(context)", file: file, line: line)
        return seen == old && check.status == 0 ? .old : nil
    }

    /// Keeps the live db, -wal and -shm as they are now, to put back before every crash.
    func saveLive(_ box: Sandbox) throws -> String {
        let saved = box.root + "/saved"
        try FileManager.default.createDirectory(atPath: saved, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: box.liveDir) {
            XCTAssertEqual(try Sandbox.execute("/bin/cp", [box.liveDir + "/" + name, saved + "/" + name]).status, 0)
        }
        return saved
    }

    /// The live directory exactly as saved (nothing else in it); the safety copies and
    /// incident records of earlier runs go, to keep the disk small.
    func resetLive(_ box: Sandbox, from saved: String) throws {
        try FileManager.default.removeItem(atPath: box.liveDir)
        try FileManager.default.createDirectory(atPath: box.liveDir, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: saved) {
            XCTAssertEqual(try Sandbox.execute("/bin/cp", [saved + "/" + name, box.liveDir + "/" + name]).status, 0)
        }
        for dir in ["safety", "incidents"] where exists(box.backups + "/" + dir) {
            try FileManager.default.removeItem(atPath: box.backups + "/" + dir)
        }
    }

    /// After a crash, a plain rerun restores: the manifest's hash, nothing beside it, no temp
    /// file of the killed run left anywhere.
    func assertRerunRestores(_ box: Sandbox, _ backup: Backup, _ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let again = try restore(box, ["--no-services"])
        XCTAssertEqual(again.status, 0, "\(context): rerun: \(again.stderr)", file: file, line: line)
        XCTAssertEqual(try box.sha256(box.db), backup.sha256, "\(context): rerun", file: file, line: line)
        XCTAssertFalse(exists(box.db + "-wal"), "\(context): rerun left a -wal", file: file, line: line)
        XCTAssertEqual(try leftovers(box), [], "\(context): temp files of the killed run are swept by the rerun", file: file, line: line)
    }

    /// ABATHUR_FAULT=OP:crash@N for every open, write, fsync, rename and unlink of a restore
    /// over a database with a hot WAL of later commits.
    func testInjectedCrashAtEveryStepLeavesTheOldOrTheNewDatabase() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 800)
        let backup = try takeBackup(box)
        try commitLater(box, rows: 40)
        let saved = try saveLive(box)
        let old = try contents(try inspectionCopy(box))
        XCTAssertNotEqual(old, backup.contents, "old and new must differ for the test to mean anything")
        let backupsBefore = try storedBackups(box)

        // Exactly the calls a restore makes, counted by a traced run from the same state.
        try resetLive(box, from: saved)
        let calls = try FaultTrace.count(in: box.root) { env in
            let run = try restore(box, ["--no-services"], env: env)
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        let faults = FaultTrace.faults(calls, ops: ["rename", "fsync", "open", "write", "unlink"], what: "crash")
        XCTAssertGreaterThan(faults.count, 20, "a restore makes more calls than that: \(calls)")
        var outcomes: [State: [String]] = [:]
        for fault in faults {
            try resetLive(box, from: saved)
            let run = try restore(box, ["--no-services"], env: ["ABATHUR_FAULT": fault])
            XCTAssertEqual(run.status, 9, "\(fault): expected the injected SIGKILL, got exit \(run.status): \(run.stderr)")
            if let state = try classify(box, backup, old: old, fault) { outcomes[state, default: []].append(fault) }
            try assertRerunRestores(box, backup, fault)
        }
        print("RestoreSafetyTests: \(faults.count) injected crashes (calls \(calls)); old: \(outcomes[.old, default: []]); new: \(outcomes[.new, default: []])")
        XCTAssertFalse(outcomes[.old, default: []].isEmpty, "some crash must have left the old database: \(outcomes)")
        XCTAssertFalse(outcomes[.new, default: []].isEmpty, "some crash must have left the new database: \(outcomes)")
        XCTAssertEqual(try storedBackups(box), backupsBefore, "no crash touched a backup")
    }

    /// A real SIGKILL at random moments spread over 90% of a measured restore of a ~20 MB database whose hot
    /// WAL rewrote every task (so the settle has real work to do).
    func testSIGKILLAtRandomMomentsLeavesTheOldOrTheNewDatabase() throws {
        let box = try makeBox()
        try box.makeDemoDatabase(rows: 14_000)
        let backup = try takeBackup(box)
        try commitLater(box, rows: 20, retitle: true)
        let saved = try saveLive(box)
        let old = try contents(try inspectionCopy(box))
        XCTAssertEqual(old[Self.retitled], old["tasks"])
        XCTAssertNotEqual(old, backup.contents)

        // Normal runs, timed; the faster of two, so a load spike during the measurement does
        // not push the kill moments past the end of the later runs.
        var duration = Double.infinity
        for _ in 0..<2 {
            try resetLive(box, from: saved)
            let started = Date()
            let normal = try restore(box, ["--no-services"])
            duration = min(duration, Date().timeIntervalSince(started))
            XCTAssertEqual(normal.status, 0, normal.stderr)
        }

        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ABATHUR_") && $0.key != "JOURNAL_STREAM" }
        environment["ABATHUR_CONFIG"] = box.config
        for (key, value) in self.environment(box) { environment[key] = value }
        var outcomes: [State: [String]] = [:]
        var killed = 0
        for slot in 0..<10 {
            try resetLive(box, from: saved)
            let delay = duration * 0.9 * (Double(slot) + Double.random(in: 0..<1)) / 10
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Binaries.tool("abathur-restore"))
            process.arguments = ["--db", box.db, "--backup-dir", box.backups, "--no-services"]
            process.environment = environment
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: delay)  // a moment to kill at, not a synchronisation
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed += 1
            }
            process.waitUntilExit()
            let context = String(format: "SIGKILL after %.3fs of %.3fs", delay, duration)
            if let state = try classify(box, backup, old: old, context) { outcomes[state, default: []].append(context) }
            try assertRerunRestores(box, backup, context)
        }
        print("RestoreSafetyTests: \(killed) of 10 runs killed (a normal run took \(duration)s); old: \(outcomes[.old, default: []].count), new: \(outcomes[.new, default: []].count)")
        XCTAssertGreaterThanOrEqual(killed, 5, "most runs must have been killed mid-way (a normal run took \(duration)s)")
        XCTAssertFalse(outcomes.isEmpty)
    }
}
