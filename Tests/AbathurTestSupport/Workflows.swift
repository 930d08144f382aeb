import Foundation
import XCTest

/// The steps most tests share: take a backup, restore one.
extension Sandbox {
    /// Takes a backup (at `time`, through the test clock `ABATHUR_NOW`, when given) and returns
    /// the new backup's file name, which the run prints on stdout.
    @discardableResult
    func takeBackup(at time: Int? = nil, _ args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try backup(args, env: time.map { ["ABATHUR_NOW": "\($0)"] } ?? [:])
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        let path = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(path.hasPrefix(backups + "/"), "stdout names the new backup: \(run.stdout)", file: file, line: line)
        return URL(fileURLWithPath: path).lastPathComponent
    }

    /// `abathur-restore` against this sandbox, with no units to stop and no health check
    /// unless `env` configures them.
    @discardableResult
    func restore(_ args: [String] = [], env: [String: String] = [:], stdin: Data? = nil) throws -> Run {
        var environment = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]
        for (key, value) in env { environment[key] = value }
        return try run("abathur-restore", ["--db", db, "--backup-dir", backups] + args, env: environment, stdin: stdin)
    }
}
