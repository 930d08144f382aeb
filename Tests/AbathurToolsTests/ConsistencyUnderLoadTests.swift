import Foundation
import XCTest
@testable import AbathurTestSupport

/// FACTS.md 1-2: a copy of a live database can be torn and still pass integrity_check; only
/// a snapshot in one read transaction is consistent. A writer keeps invariants (a budget sum
/// that transfers keep constant, a sequence mirrored in three tables) while backups run.
final class ConsistencyUnderLoadTests: XCTestCase {
    func testTwentyBackupsUnderAWriterAreAllConsistent() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 3000)
        let writer = try box.startWriter(seconds: 600)
        defer { if writer.isRunning { writer.terminate() } }
        // Let the writer get going, so every backup races it.
        Thread.sleep(forTimeInterval: 0.5)

        var startSeqs: [String: Int] = [:]
        var previous = Set<String>()
        for round in 0..<22 {
            let seq = try XCTUnwrap(Int(try box.demo(["seq", box.db]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
            let result = try box.backup()
            XCTAssertEqual(result.status, 0, "round \(round): \(result.stderr)")
            let now = Set(try box.backupFiles())
            let added = now.subtracting(previous)
            XCTAssertEqual(added.count, 1, "round \(round): one new backup, got \(added)")
            if let name = added.first { startSeqs[name] = seq }
            previous = now
        }
        XCTAssertTrue(writer.isRunning, "the writer must still be running: every backup raced it")
        writer.terminate()
        writer.waitUntilExit()

        let files = try box.backupFiles()
        XCTAssertGreaterThanOrEqual(files.count, 20)
        var seqs: [Int] = []
        for name in files {
            let restored = box.root + "/check.db"
            try? FileManager.default.removeItem(atPath: restored)
            XCTAssertEqual(try box.gunzip(name, to: restored).status, 0)
            let minSeq = try XCTUnwrap(startSeqs[name])
            let check = try box.demo(["check", restored, "--min-seq", "\(minSeq)"])
            XCTAssertEqual(check.status, 0, "\(name): \(check.stderr)")
            let manifest = try box.manifest(name)
            XCTAssertEqual((manifest["database"] as? [String: Any])?["sha256"] as? String, try box.sha256(restored), name)
            seqs.append(Int(try box.query(restored, "SELECT value FROM state WHERE key = 'writer_seq'")) ?? -1)
        }
        // The writer really wrote between backups: the snapshots are not all the same.
        XCTAssertGreaterThan(Set(seqs).count, 10, "snapshots should differ under a writer: \(seqs)")
        XCTAssertEqual(seqs, seqs.sorted(), "later backups hold later states")
    }
}
