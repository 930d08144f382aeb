import Foundation
import XCTest
@testable import AbathurTestSupport

/// Issue 9, item 3: a file that is not a whole database image (SQLite opens it and ignores the
/// extra bytes) must be refused by the restore candidate check, by `abathur-backup verify` and
/// by `abathur-integrity` alike: one set of file-shape rules (`FileShape`) for all three.
final class CandidateShapeTests: XCTestCase {
    let restoreEnv = ["ABATHUR_SERVICES": "", "ABATHUR_HEALTH_URL": ""]

    /// A demo database with one backup; returns the backup's name and its inflated bytes.
    func setUp(_ box: Sandbox) throws -> (name: String, raw: Data) {
        try box.makeDemoDatabase(rows: 300)
        XCTAssertEqual(try box.backup().status, 0)
        let name = try XCTUnwrap(try box.backupFiles().first)
        let raw = box.root + "/raw.db"
        XCTAssertEqual(try box.gunzip(name, to: raw).status, 0)
        return (name, try Data(contentsOf: URL(fileURLWithPath: raw)))
    }

    /// The live directory (our lock aside) and the backup directory's backups and manifests.
    func state(_ box: Sandbox) throws -> [String: String] {
        var all = try box.fingerprint(box.liveDir).filter { !$0.key.hasSuffix(".abathur-lock") }
        for (k, v) in try box.fingerprint(box.backups) where k.hasPrefix("abathur_") { all["backups/" + k] = v }
        return all
    }

    func gzip(_ data: Data, to path: String) throws {
        let raw = path + ".raw"
        try data.write(to: URL(fileURLWithPath: raw))
        XCTAssertEqual(try Sandbox.shell("gzip -c '\(raw)' > '\(path)' && rm '\(raw)'").status, 0)
    }

    /// Makes the backup `name` hold `gz` instead, with a manifest rewritten to match it (the
    /// hashes and sizes of both sides), so that only the shape rules can tell.
    func forgeBackup(_ box: Sandbox, _ name: String, from gz: String) throws {
        let path = box.backups + "/" + name
        XCTAssertEqual(try Sandbox.shell("cp '\(gz)' '\(path)'").status, 0)
        let script = """
        import hashlib, json, sys, zlib
        path = sys.argv[1]
        gz = open(path, 'rb').read()
        d = zlib.decompressobj(16 + zlib.MAX_WBITS); raw = b''; rest = gz
        while rest:
            raw += d.decompress(rest); rest = d.unused_data
            if rest: d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        m = json.load(open(path + '.json'))
        m['gz']['sha256'] = hashlib.sha256(gz).hexdigest(); m['gz']['bytes'] = len(gz)
        m['database']['sha256'] = hashlib.sha256(raw).hexdigest(); m['database']['bytes'] = len(raw)
        json.dump(m, open(path + '.json', 'w'))
        """
        let run = try Sandbox.execute("/usr/bin/python3", ["-c", script, path])
        XCTAssertEqual(run.status, 0, run.stderr)
    }

    /// The three tools on one doctored backup: restore by path (no manifest), integrity on the
    /// file, verify with a manifest that matches the doctored bytes. All refuse it, exit 3, with
    /// one line naming the file, and change nothing.
    func assertAllThreeRefuse(_ box: Sandbox, name: String, doctored gz: String, problem: String,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try state(box)
        let restore = try box.run("abathur-restore", [gz, "--db", box.db, "--backup-dir", box.backups], env: restoreEnv)
        XCTAssertEqual(restore.status, 3, "restore: \(restore.stderr)", file: file, line: line)
        XCTAssertEqual(restore.stderrLines.count, 1, restore.stderr, file: file, line: line)
        XCTAssertTrue(restore.stderr.hasPrefix("abathur-restore: error: \(gz): "), restore.stderr, file: file, line: line)
        XCTAssertTrue(restore.stderr.contains(problem), restore.stderr, file: file, line: line)
        XCTAssertEqual(try state(box), before, "nothing live changed", file: file, line: line)

        let integrity = try box.run("abathur-integrity", [gz])
        XCTAssertEqual(integrity.status, 3, "integrity: \(integrity.stdout)\(integrity.stderr)", file: file, line: line)
        XCTAssertTrue(integrity.stderr.hasPrefix("abathur-integrity: error: \(gz): "), integrity.stderr, file: file, line: line)
        XCTAssertTrue(integrity.stdout.contains(problem), integrity.stdout, file: file, line: line)

        try forgeBackup(box, name, from: gz)
        let forged = try state(box)
        let verify = try box.run("abathur-backup", ["verify", name, "--backup-dir", box.backups])
        XCTAssertEqual(verify.status, 3, "verify: \(verify.stdout)\(verify.stderr)", file: file, line: line)
        XCTAssertEqual(verify.stderrLines.count, 1, verify.stderr, file: file, line: line)
        XCTAssertTrue(verify.stderr.hasPrefix("abathur-backup: error: \(box.backups)/\(name): "), verify.stderr, file: file, line: line)
        XCTAssertTrue(verify.stderr.contains(problem), verify.stderr, file: file, line: line)
        // Restoring the forged backup by name: its hashes match, its shape does not.
        let named = try box.run("abathur-restore", [name, "--db", box.db, "--backup-dir", box.backups], env: restoreEnv)
        XCTAssertEqual(named.status, 3, "restore by name: \(named.stderr)", file: file, line: line)
        XCTAssertTrue(named.stderr.contains(problem), named.stderr, file: file, line: line)
        XCTAssertEqual(try state(box), forged, "nothing live changed", file: file, line: line)
    }

    /// The reproduction: a second gzip member appended to a good backup.
    func testASecondGzipMemberIsRefusedByAllThree() throws {
        let box = try Sandbox()
        let (name, raw) = try setUp(box)
        let gz = box.root + "/appended.db.gz"
        XCTAssertEqual(try Sandbox.shell("cp '\(box.backups)/\(name)' '\(gz)' && echo hello | gzip >> '\(gz)'").status, 0)
        try assertAllThreeRefuse(box, name: name, doctored: gz, problem: "6 bytes after the last page")
        // The same bytes, told by integrity, as the issue saw them.
        XCTAssertEqual(raw.count % 4096, 0)
    }

    func testTruncatedToAPartialPageIsRefusedByAllThree() throws {
        let box = try Sandbox()
        let (name, raw) = try setUp(box)
        let gz = box.root + "/truncated.db.gz"
        try gzip(raw.prefix(raw.count - 100), to: gz)
        try assertAllThreeRefuse(box, name: name, doctored: gz, problem: "truncated")
    }

    /// A whole page of garbage after the last page: a multiple of the page size, so only the
    /// "exactly page count × page size" rule sees it.
    func testTrailingGarbagePageIsRefusedByAllThree() throws {
        let box = try Sandbox()
        let (name, raw) = try setUp(box)
        let gz = box.root + "/trailing.db.gz"
        var bytes = raw
        bytes.append(Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }))
        try gzip(bytes, to: gz)
        try assertAllThreeRefuse(box, name: name, doctored: gz, problem: "4096 bytes after the last page")
    }

    func testHeaderPageCountBeyondTheFileIsRefusedByAllThree() throws {
        let box = try Sandbox()
        let (name, raw) = try setUp(box)
        let gz = box.root + "/short.db.gz"
        var bytes = raw
        let count = UInt32(raw.count / 4096) + 3
        bytes.replaceSubrange(28..<32, with: [UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)])
        try gzip(bytes, to: gz)
        try assertAllThreeRefuse(box, name: name, doctored: gz, problem: "truncated")
    }
}
