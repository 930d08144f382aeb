import Foundation
import XCTest
@testable import AbathurTestSupport

/// A repair whose service does not come back healthy is rolled back to the raw files as they
/// were: the damaged `-wal` included, byte for byte, since it still holds what SQLite would
/// drop. The units are stopped and started around both swaps (a fake `systemctl` first on
/// PATH logs each call with the database's hash).
final class WalfixRollbackTests: XCTestCase {
    func makeBox() throws -> (box: Sandbox, env: [String: String]) {
        let box = try Sandbox()
        let bin = box.root + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try """
        #!/bin/sh
        echo "$1" >> '\(box.root)/systemctl.log'
        exit 0

        """.write(toFile: bin + "/systemctl", atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(bin + "/systemctl", 0o755), 0)
        return (box, ["PATH": bin + ":/usr/bin:/bin", "ABATHUR_HEALTH_URL": "", "ABATHUR_HEALTH_RETRIES": "1",
                      "ABATHUR_SERVICES": "abathur-api"])
    }

    func files(_ box: Sandbox) throws -> [String: String] {
        try box.fingerprint(box.liveDir).filter { !$0.key.hasPrefix(".") }
    }

    func testAnUnhealthyServiceAfterTheRepairGetsTheRawFilesBack() throws {
        let (box, env) = try makeBox()
        try box.makeDemoDatabase(rows: 300)
        try box.makeHotWAL(inserts: 30)
        // A torn tail: a repair has something to do, and SQLite's recovery keeps every commit.
        let wal = box.db + "-wal"
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int)
        XCTAssertEqual(truncate(wal, off_t(size - 1000)), 0)
        let before = try files(box)
        XCTAssertEqual(Set(before.keys), ["abathur.db", "abathur.db-wal", "abathur.db-shm"])

        var failing = env
        failing["ABATHUR_HEALTH_COMMAND"] = "/bin/false"
        let run = try box.run("abathur-walfix", ["repair", "--db", box.db, "--backup-dir", box.backups, "--json"], env: failing)
        XCTAssertEqual(run.status, 3, run.stderr)
        XCTAssertTrue(run.stderr.contains("rolled back"), run.stderr)
        XCTAssertEqual(try files(box), before, "the database, its -wal and its -shm are the raw files as they were")
        let log = try String(contentsOfFile: box.root + "/systemctl.log", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log, ["stop", "start", "stop", "start"], "stopped and started around the repair and around the rollback")

        // The same repair with a healthy service installs, and the units run again.
        var healthy = env
        healthy["ABATHUR_HEALTH_COMMAND"] = "/bin/true"
        let again = try box.run("abathur-walfix", ["repair", "--db", box.db, "--backup-dir", box.backups], env: healthy)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(Set(try files(box).keys), ["abathur.db"], "the repaired database alone")
    }
}
