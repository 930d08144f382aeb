import Foundation
import XCTest
@testable import AbathurTestSupport

/// What the diskcheck `--fix` tests share: the test clock, the step names, thresholds out of
/// the way, stale temp files of killed runs, a stand-in systemctl and the database's files.
/// A base class with no tests of its own.
class DiskcheckTestCase: XCTestCase {
    /// 2026-11-27T10:00:00Z, the test clock (ABATHUR_NOW) for backups.
    static let t0 = 1_795_773_600
    static let hour = 3600
    static let stepNames = ["release the reserve", "checkpoint (TRUNCATE)", "remove stale temp files",
                            "remove old safety copies and aside directories", "prune backups down to the floor", "vacuum"]
    /// The free-space checks out of the way, so the verdict speaks of the target and the rest.
    static let quietThresholds = ["--warn", "99.9%", "--crit", "100%", "--crit-free", "0"]

    /// A pid that no process has any more (a child that already exited).
    func deadPid() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        let pid = process.processIdentifier
        XCTAssertEqual(kill(pid, 0), -1, "pid \(pid) is gone")
        return pid
    }

    /// A stale temp file of a killed run (its pid is gone), `bytes` long (and allocated).
    func plantStaleTemp(in directory: String, bytes: Int) throws -> String {
        let path = directory + "/.abathur-tmp-\(try deadPid())-0123abcd-snapshot"
        var data = Data(count: bytes)
        for i in stride(from: 0, to: bytes, by: 512) { data[i] = UInt8(truncatingIfNeeded: i / 512 + 1) }
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A `systemctl` first on PATH that only logs its arguments, and two units configured.
    func fakeSystemctl(_ box: Sandbox) throws -> (env: [String: String], log: String) {
        let bin = box.root + "/fakebin"
        let log = box.root + "/systemctl.log"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let script = bin + "/systemctl"
        try Data("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '\(log)'\nexit 0\n".utf8).write(to: URL(fileURLWithPath: script))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        return (["PATH": bin + ":/usr/bin:/bin", "ABATHUR_SERVICES": "abathur-api abathur-workers"], log)
    }

    /// db, -wal and -shm by SHA-256 (nil: absent).
    func databaseFiles(_ world: DiskWorld) throws -> [String?] {
        try ["", "-wal", "-shm"].map { suffix in
            FileManager.default.fileExists(atPath: world.db + suffix) ? try world.box.sha256(world.db + suffix) : nil
        }
    }

    /// Each step's status, in order.
    func statuses(_ steps: [[String: Any]]) -> [String] { steps.map { $0["status"] as? String ?? "?" } }
}
