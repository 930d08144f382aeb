import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-walfix inspect` as a timer or a monitor runs it against a live service: a WAL that
/// grows past its limit, checkpoints starved by a reader that never lets go, and the plain
/// answers for a database with no WAL or no database at all.
final class WalfixWatchTests: XCTestCase {
    func inspect(_ box: Sandbox, _ args: [String] = []) throws -> (run: Run, result: [String: Any]) {
        let run = try box.run("abathur-walfix", ["inspect", "--db", box.db, "--json"] + args)
        let document = try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any]
        return (run, document?["result"] as? [String: Any] ?? [:])
    }

    /// A real reader in another process that opened its transaction before any write, then a
    /// writer (with SQLite's automatic checkpoints on) committing `commits` rows past it; the
    /// reader holds on until `release` is called.
    func startStarvingReader(_ box: Sandbox, commits: Int) throws -> (pid: Int32, release: () -> Void) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", """
            import sqlite3, sys
            r = sqlite3.connect(sys.argv[1], isolation_level=None)
            r.execute('BEGIN'); r.execute('SELECT count(*) FROM tasks').fetchall()
            w = sqlite3.connect(sys.argv[1], isolation_level=None)
            for i in range(int(sys.argv[2])):
                w.execute("INSERT INTO state(key, value, updated_at) VALUES (?, 'x', datetime('now'))", ('starve-%d' % i,))
            print('ready', flush=True); sys.stdin.read()
            """, box.db, "\(commits)"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        XCTAssertEqual(output.fileHandleForReading.readLine(), "ready\n")
        return (process.processIdentifier, { try? input.fileHandleForWriting.close(); process.waitUntilExit() })
    }

    func testAReaderThatStarvesCheckpointsIsNamedAndWarns() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 200)
        let reader = try startStarvingReader(box, commits: 1500)
        defer { reader.release() }
        let (run, result) = try inspect(box)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertEqual(result["starved"] as? Bool, true)
        XCTAssertEqual(result["dropped_commits"] as? Int, 0)
        let locks = result["locks"] as? [[String: Any]] ?? []
        XCTAssertTrue(locks.contains { ($0["pid"] as? Int).map(Int32.init) == reader.pid && ($0["slot"] as? String)?.hasPrefix("read mark") == true },
                      "the reader's read mark is named: \(locks)")
        XCTAssertTrue(run.stderr.contains("starved by pid \(reader.pid) (python3)"), run.stderr)
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, "one line: \(run.stderr)")

        // Released, the same WAL is no longer starved: the service's next checkpoint can copy it.
        reader.release()
        let after = try inspect(box)
        XCTAssertEqual(after.result["starved"] as? Bool, false)
    }

    func testAWALOverItsLimitWarnsAndOneUnderItDoesNot() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 200)
        try box.makeHotWAL(inserts: 40)
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: box.db + "-wal")[.size] as? Int)
        let over = try inspect(box, ["--max-wal-size", "\(size - 1)"])
        XCTAssertEqual(over.run.status, 1, over.run.stderr)
        XCTAssertEqual(over.result["over_max_wal_size"] as? Bool, true)
        XCTAssertTrue(over.run.stderr.contains("--max-wal-size"), over.run.stderr)
        let under = try inspect(box, ["--max-wal-size", "\(size)"])
        XCTAssertEqual(under.run.status, 0, under.run.stderr)
        XCTAssertEqual(under.run.stderr, "")
        let bad = try box.run("abathur-walfix", ["--db", box.db, "--max-wal-size", "lots"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--max-wal-size 'lots'"), bad.stderr)
    }

    func testNoWALIsHealthyAndTheKeysAreStillThere() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 50)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-wal"), "the demo database is closed cleanly")
        let (run, result) = try inspect(box)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(result["frames"] as? Int, 0)
        XCTAssertEqual(result["committed_frames"] as? Int, 0)
        XCTAssertEqual(result["dropped_commits"] as? Int, 0)
        XCTAssertTrue(result.keys.contains("first_invalid_frame") && result["first_invalid_frame"] is NSNull, "null, not missing: \(result)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.db + "-wal"), "inspect created no -wal")
    }

    /// Empty, or not an SQLite file: exit 4 from every subcommand, as in every tool (SPEC.md).
    func testAnEmptyOrForeignFileIsNotADatabase() throws {
        let box = try Sandbox()
        for (name, bytes) in [("empty", Data()), ("text", Data(String(repeating: "not a database\n", count: 300).utf8))] {
            try bytes.write(to: URL(fileURLWithPath: box.db))
            for command in [["inspect"], ["checkpoint"]] {
                let run = try box.run("abathur-walfix", command + ["--db", box.db])
                XCTAssertEqual(run.status, 4, "\(name) \(command): \(run.stderr)")
                XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
                XCTAssertTrue(run.stderr.hasPrefix("abathur-walfix: error: \(box.db): "), run.stderr)
            }
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: box.db)), bytes, "\(name): unchanged")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.liveDir), ["abathur.db"], "\(name): nothing created beside it")
        }
    }

    func testAMissingDatabaseIsOneLineAndExit8() throws {
        let box = try Sandbox()
        for command in [["inspect"], ["checkpoint"], ["repair", "--no-services"]] {
            let run = try box.run("abathur-walfix", command + ["--db", box.db, "--backup-dir", box.backups])
            XCTAssertEqual(run.status, 8, "\(command): \(run.stderr)")
            XCTAssertEqual(run.stderr, "abathur-walfix: error: \(box.db): no such file\n", "\(command)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: box.db), "\(command) created nothing")
        }
    }
}
