import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, items 4 and 5: SPEC.md's table "which input gets which code", the same in every
/// tool. Each kind of input is handed to each tool that reads one (backup --db, integrity
/// --db, integrity PATH, restore PATH), and the exit code and the one diagnostic line are
/// checked, with the live database and the backups byte-identical afterwards.
final class InputClassTests: XCTestCase {
    enum Reader: CaseIterable {
        case backup, integrityLive, integrityPath, restorePath
    }

    /// Runs `reader` on `input` in `box` (whose own database is healthy and has a backup).
    func read(_ reader: Reader, _ input: String, in box: Sandbox, extra: [String] = []) throws -> Run {
        switch reader {
        case .backup:
            return try box.run("abathur-backup", ["--db", input, "--backup-dir", box.backups] + extra, timeout: 60)
        case .integrityLive:
            return try box.run("abathur-integrity", ["--db", input, "--backup-dir", box.backups] + extra, timeout: 60)
        case .integrityPath:
            return try box.run("abathur-integrity", [input, "--backup-dir", box.backups] + extra, timeout: 60)
        case .restorePath:
            return try box.run("abathur-restore", [input, "--db", box.db, "--backup-dir", box.backups, "--no-services"] + extra, timeout: 60)
        }
    }

    /// A directory's files without our lock files and incident records (which a refused
    /// restore writes by design).
    func stable(_ fingerprint: [String: String]) -> [String: String] {
        fingerprint.filter { !$0.key.hasSuffix(".abathur.lock") && !$0.key.hasSuffix(".abathur-lock") && $0.key != "incidents" }
    }

    /// Every reader gives `code` for `input`, with one error line naming it; nothing changes.
    func assertEveryReader(_ input: String, _ code: Int32, _ what: String, readers: [Reader] = Reader.allCases,
                           config: String = "", extra: [String] = [], setUp: ((Sandbox) throws -> Void)? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let box = try Sandbox()
        try config.write(toFile: box.config, atomically: true, encoding: .utf8)
        try box.makeDemoDatabase(rows: 200)
        XCTAssertEqual(try box.backup().status, 0, file: file, line: line)
        let target = input.replacingOccurrences(of: "ROOT", with: box.root)
        try setUp?(box)
        let live = try stable(box.fingerprint(box.liveDir))
        let backups = try stable(box.fingerprint(box.backups))
        for reader in readers {
            let run = try read(reader, target, in: box, extra: extra)
            XCTAssertEqual(run.status, code, "\(what), \(reader): \(run.stderr)", file: file, line: line)
            let errors = run.stderrLines.filter { $0.contains(": error: ") }
            XCTAssertFalse(errors.isEmpty, "\(what), \(reader): no error line", file: file, line: line)
            XCTAssertTrue(errors.allSatisfy { $0.contains(target) }, "\(what), \(reader): the line names \(target): \(run.stderr)", file: file, line: line)
            XCTAssertEqual(stable(try box.fingerprint(box.liveDir)), live, "\(what), \(reader): live files byte-identical", file: file, line: line)
            XCTAssertEqual(stable(try box.fingerprint(box.backups)), backups, "\(what), \(reader): backups byte-identical", file: file, line: line)
        }
    }

    func testMissingIsEight() throws {
        try assertEveryReader("ROOT/nothing-here.db", 8, "missing")
    }

    func testDirectoryIsSeven() throws {
        try assertEveryReader("ROOT/a-directory", 7, "directory") { box in
            try FileManager.default.createDirectory(atPath: box.root + "/a-directory", withIntermediateDirectories: false)
        }
    }

    func testDeviceIsSeven() throws {
        try assertEveryReader("/dev/null", 7, "character device")
    }

    func testFIFOIsSevenWithoutHanging() throws {
        try assertEveryReader("ROOT/a-fifo", 7, "FIFO") { box in
            XCTAssertEqual(mkfifo(box.root + "/a-fifo", 0o600), 0)
        }
    }

    func testSocketIsSeven() throws {
        try assertEveryReader("ROOT/a-socket", 7, "socket") { box in
            let run = try Sandbox.execute("/usr/bin/python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", box.root + "/a-socket"])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
    }

    func testEmptyIsFour() throws {
        try assertEveryReader("ROOT/empty.db", 4, "empty file") { box in
            XCTAssertTrue(FileManager.default.createFile(atPath: box.root + "/empty.db", contents: Data()))
        }
    }

    func testNotSQLiteIsFour() throws {
        try assertEveryReader("ROOT/notes.db", 4, "not SQLite") { box in
            try String(repeating: "not a database\n", count: 500).write(toFile: box.root + "/notes.db", atomically: true, encoding: .utf8)
        }
    }

    /// A healthy SQLite file that has none of abathur's tables is another application's
    /// database: refused (7), not "corrupt" (4).
    func testForeignSchemaIsSeven() throws {
        try assertEveryReader("ROOT/other.db", 7, "foreign schema") { box in
            let run = try Sandbox.execute("/usr/bin/sqlite3", [box.root + "/other.db",
                "CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices(total) VALUES (1.5), (2.5);"])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
    }

    func testForeignApplicationIdIsSeven() throws {
        try assertEveryReader("ROOT/copy.db", 7, "foreign application_id", config: "expect_application_id = 1094865992\n") { box in
            try box.makeDemoDatabase(rows: 50, at: box.root + "/copy.db")
            let run = try Sandbox.execute("/usr/bin/sqlite3", [box.root + "/copy.db", "PRAGMA application_id=7; PRAGMA wal_checkpoint(TRUNCATE);"])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
    }

    /// A database file with a corrupt page is 4 whichever tool reads it; a restore given it as
    /// its source refuses it before anything live is touched.
    func testCorruptPagesAreFour() throws {
        try assertEveryReader("ROOT/corrupt.db", 4, "corrupt index page") { box in
            let path = box.root + "/corrupt.db"
            try box.makeDemoDatabase(rows: 2000, at: path)
            let root = try Sandbox.execute("/usr/bin/sqlite3", [path, "PRAGMA wal_checkpoint(TRUNCATE); SELECT rootpage FROM sqlite_schema WHERE name='idx_tasks_status';"])
            let page = try XCTUnwrap(Int(root.stdout.split(separator: "\n").last ?? ""))
            let pageSize = Int(try box.query(path, "PRAGMA page_size"))!
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            try handle.seek(toOffset: UInt64((page - 1) * pageSize))
            handle.write(Data(count: pageSize))
            try handle.close()
        }
    }

    /// Runs the Python `script` on the box's database (then `args`) and returns once it has
    /// printed "ready"; it is ended at teardown if still running.
    func startWriter(_ script: String, on box: Sandbox, _ args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> Process {
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        writer.arguments = ["-c", script, box.db] + args
        let out = Pipe()
        writer.standardOutput = out
        try writer.run()
        addTeardownBlock { if writer.isRunning { writer.terminate(); writer.waitUntilExit() } }
        let ready = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        XCTAssertTrue(ready.hasPrefix("ready"), ready, file: file, line: line)
        return writer
    }

    /// Item 4: a writer in `locking_mode=EXCLUSIVE` keeps its wal-index in heap memory: there
    /// is a `-wal` and no `-shm`. Its files must never be copied raw (FACTS.md 1): the readers
    /// wait for the busy timeout, then exit 5 naming the holder.
    func testExclusiveWriterIsFiveNamingIt() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        XCTAssertEqual(try box.backup().status, 0)
        let script = """
        import sqlite3, sys, time
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute('PRAGMA locking_mode=EXCLUSIVE')
        c.execute('PRAGMA wal_autocheckpoint=0')
        for i in range(200):
            c.execute("INSERT INTO state(key, value, updated_at) VALUES (?, 'x', datetime('now'))", ('ex-%d' % i,))
        print('ready', flush=True)
        deadline = time.time() + float(sys.argv[2])
        i = 0
        while time.time() < deadline:
            c.execute("INSERT INTO state(key, value, updated_at) VALUES (?, 'y', datetime('now'))", ('more-%d' % i,))
            i += 1
            time.sleep(0.001)
        c.close()
        """
        let writer = try startWriter(script, on: box, ["120"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: box.db + "-wal"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-shm"), "exclusive mode: no -shm")
        let backups = try box.fingerprint(box.backups)

        for reader in [Reader.backup, .integrityLive] {
            let run = try read(reader, box.db, in: box, extra: ["--busy-timeout", "300"])
            XCTAssertEqual(run.status, 5, "\(reader): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("pid \(writer.processIdentifier)"), "\(reader) names the holder: \(run.stderr)")
            XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
        }
        XCTAssertEqual(stable(try box.fingerprint(box.backups)), stable(backups))
        XCTAssertTrue(writer.isRunning, "the writer was not disturbed")
    }

    /// The same writer, gone before the busy timeout runs out: the reader waits and succeeds,
    /// and its backup holds every row the writer committed.
    func testExclusiveWriterThatFinishesIsWaitedFor() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let script = """
        import sqlite3, sys, time
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute('PRAGMA locking_mode=EXCLUSIVE')
        for i in range(100):
            c.execute("INSERT INTO state(key, value, updated_at) VALUES (?, 'x', datetime('now'))", ('ex-%d' % i,))
        print('ready', flush=True)
        time.sleep(1.5)
        c.close()
        """
        let writer = try startWriter(script, on: box)
        let run = try box.backup(["--busy-timeout", "60000"])
        XCTAssertEqual(run.status, 0, run.stderr)
        writer.waitUntilExit()
        let name = try XCTUnwrap(try box.backupFiles().last)
        XCTAssertEqual(try box.gunzip(name, to: box.root + "/restored.db").status, 0)
        XCTAssertEqual(try box.query(box.root + "/restored.db", "SELECT count(*) FROM state WHERE key LIKE 'ex-%'"), "100")
    }
}
