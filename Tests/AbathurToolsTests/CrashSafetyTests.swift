import Foundation
import XCTest
@testable import AbathurTestSupport

/// FACTS.md 15: a killed copy must never leave a file under a final name. SIGKILL at many
/// points (timed, and injected at the N-th write/fsync/rename); afterwards only complete
/// backups carry final names, the source is byte-identical, and the next run sweeps the
/// leftovers and succeeds.
final class CrashSafetyTests: XCTestCase {
    /// Every `.db.gz` with a final name is complete: it has a manifest, gunzips, and matches.
    func assertOnlyCompleteBackups(_ box: Sandbox, file: StaticString = #filePath, line: UInt = #line) throws {
        // Temp names are not final names: the next run sweeps them.
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: box.backups)) ?? []).filter { !$0.hasPrefix(".abathur-tmp-") }
        for name in names where name.hasSuffix(".db.gz") {
            let path = box.backups + "/" + name
            let inflate = try Sandbox.shell("gzip -t '\(path)'")
            XCTAssertEqual(inflate.status, 0, "\(name) carries a final name but is not a complete gzip", file: file, line: line)
        }
        for name in names where name.hasSuffix(".db.gz.json") {
            let gz = String(name.dropLast(5))
            XCTAssertTrue(names.contains(gz), "manifest \(name) without its backup", file: file, line: line)
            let manifest = try box.manifest(gz)
            let sha = (manifest["gz"] as? [String: Any])?["sha256"] as? String
            XCTAssertEqual(sha, try box.sha256(box.backups + "/" + gz), "\(gz) does not match its manifest", file: file, line: line)
        }
    }

    /// After a run that held the lock, every `.gz` with a final name has its manifest (a kill
    /// between the two links is finished from the killed run's temp manifest) and
    /// SHA256SUMS lists exactly the complete backups.
    func assertEveryPublishFinished(_ box: Sandbox, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: box.backups).filter { !$0.hasPrefix(".abathur-tmp-") }
        let finals = names.filter { $0.hasSuffix(".db.gz") }.sorted()
        for name in finals { XCTAssertTrue(names.contains(name + ".json"), "\(name) has no manifest", file: file, line: line) }
        let sums = try String(contentsOfFile: box.backups + "/SHA256SUMS", encoding: .utf8)
        XCTAssertEqual(sums.split(separator: "\n").map { String($0.split(separator: " ").last!) }.sorted(), finals, file: file, line: line)
    }

    func testInjectedCrashAtEveryWriteFsyncAndRename() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 400)
        let source = try box.fingerprint(box.liveDir)
        // One clean backup first, so retention and SHA256SUMS have something to keep.
        XCTAssertEqual(try box.backup().status, 0)
        let good = try box.fingerprint(box.backups).filter { $0.key.hasSuffix(".db.gz") || $0.key.hasSuffix(".json") }

        // Every call a backup makes, each op counted by a traced run: a killed run leaves
        // temp files that the next one sweeps, so later runs make at least as many calls.
        let calls = try FaultTrace.count(in: box.root) { XCTAssertEqual(try box.backup([], env: $0).status, 0) }
        let faults = FaultTrace.faults(calls, ops: ["open", "write", "fsync", "rename", "unlink"], what: "crash")
        XCTAssertEqual(calls.filter { $0.value > 0 }.count, 5, "every kind of call was traced: \(calls)")
        for fault in faults {
            let result = try box.backup([], env: ["ABATHUR_FAULT": fault])
            XCTAssertEqual(result.status, 9, "\(fault): expected the injected SIGKILL, got exit \(result.status): \(result.stderr)")
            try assertOnlyCompleteBackups(box)
            XCTAssertEqual(try box.fingerprint(box.liveDir), source, "\(fault): the live files changed")
            let now = try box.fingerprint(box.backups)
            for (name, hash) in good { XCTAssertEqual(now[name], hash, "\(fault): existing backup \(name) changed") }
        }

        // The next run sweeps every leftover temp file and succeeds.
        let next = try box.backup(["--verbose"])
        XCTAssertEqual(next.status, 0, next.stderr)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: box.backups).filter { $0.hasPrefix(".abathur-tmp-") }
        XCTAssertEqual(leftovers, [])
        try assertOnlyCompleteBackups(box)
        try assertEveryPublishFinished(box)
        let sums = try Sandbox.shell("cd '\(box.backups)' && sha256sum -c SHA256SUMS")
        XCTAssertEqual(sums.status, 0, sums.stdout)
    }

    func testRealSIGKILLAtRandomMomentsUnderAWriter() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 4000)
        let writer = try box.startWriter(seconds: 600, rate: 200)
        defer { if writer.isRunning { writer.terminate() } }
        var killed = 0
        for round in 0..<25 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Binaries.tool("abathur-backup"))
            process.arguments = ["--db", box.db, "--backup-dir", box.backups]
            process.environment = ["ABATHUR_CONFIG": box.config, "PATH": "/usr/bin:/bin"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Spread the kills over the run: snapshot, checks, compression, publish.
            Thread.sleep(forTimeInterval: Double(round % 10) * 0.025 + 0.005)
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed += 1
            }
            process.waitUntilExit()
            try assertOnlyCompleteBackups(box)
        }
        writer.terminate()
        writer.waitUntilExit()
        XCTAssertGreaterThan(killed, 10, "most runs must have been killed mid-way")
        let next = try box.backup()
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.backups).filter { $0.hasPrefix(".abathur-tmp-") }, [])
        try assertOnlyCompleteBackups(box)
        try assertEveryPublishFinished(box)
        // Whatever survived is consistent.
        for name in try box.backupFiles() {
            let restored = box.root + "/r.db"
            try? FileManager.default.removeItem(atPath: restored)
            XCTAssertEqual(try box.gunzip(name, to: restored).status, 0)
            XCTAssertEqual(try box.demo(["check", restored]).status, 0, name)
        }
    }
}
