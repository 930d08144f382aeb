import Foundation
import XCTest

/// A real SQLite writer (Python's sqlite3 module on the system libsqlite3) that runs some
/// statements with automatic checkpoints off and then dies without closing SQLite: what it
/// committed stays in a hot `-wal` (FACTS.md 7), and what it had not is a torn transaction.
enum DyingWriter {
    /// Runs `body`, Python with `c` an autocommit connection to `database` and `sys.argv[2...]`
    /// set to `args`, then exits at once.
    static func run(_ database: String, _ body: String, args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let script = """
        import sqlite3, os, sys
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute('PRAGMA wal_autocheckpoint=0')

        """ + body + "\nos._exit(0)\n"
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", script, database] + args)
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
    }
}
