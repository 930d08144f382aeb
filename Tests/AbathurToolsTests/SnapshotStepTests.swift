import Foundation
import XCTest
@testable import AbathurTestSupport

/// The snapshot copies all at once or `--snapshot-step PAGES` at a time (FACTS.md 2); both
/// copy inside one read transaction, so both give a verified, consistent backup while a real
/// writer commits in WAL mode. The tests read stderr through pipes (not a terminal): without
/// the option the copy goes all at once, and the option is how a test runs the stepped copy.
final class SnapshotStepTests: XCTestCase {
    /// How the snapshot step said it copied: "P page(s) copied in N step(s), HOW".
    struct Copied {
        var pages: Int
        var steps: Int
        var how: String
    }

    func copied(_ stderr: String) throws -> Copied {
        let line = try XCTUnwrap(stderr.split(separator: "\n").first { $0.contains(" snapshot: ") }, "a snapshot step line with --verbose: \(stderr)")
        let detail = try XCTUnwrap(line.components(separatedBy: " snapshot: ").last)
        let words = detail.split(separator: " ")
        let pages = try XCTUnwrap(Int(words[0]), String(line))
        XCTAssertEqual(words[1...3].joined(separator: " "), "page(s) copied in", String(line))
        let steps = try XCTUnwrap(Int(words[4]), String(line))
        let how = try XCTUnwrap(detail.components(separatedBy: "step(s), ").last?.components(separatedBy: ", in one read transaction").first)
        return Copied(pages: pages, steps: steps, how: how)
    }

    /// A writer that has committed once and goes on committing as fast as it can.
    func startWriter(_ box: Sandbox) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.demo)
        process.arguments = ["write", box.db, "--seconds", "600", "--say-ready"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let ready = Pipe()
        process.standardError = ready
        try process.run()
        // Blocks until the writer's first commit is done (or it ended).
        let said = String(decoding: ready.fileHandleForReading.availableData, as: UTF8.self)
        XCTAssertEqual(said, "ready\n", "the writer committed once and goes on")
        return process
    }

    func seq(_ box: Sandbox) throws -> Int {
        try XCTUnwrap(Int(try box.demo(["seq", box.db]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// One backup under the writer with `args`: verified, consistent at or after the writer's
    /// sequence number when it started, its database the manifest's bytes. Returns how the
    /// snapshot step said it copied.
    func backupUnderAWriter(_ args: [String]) throws -> Copied {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 3000)
        let writer = try startWriter(box)
        defer { if writer.isRunning { writer.terminate() }; writer.waitUntilExit() }

        let before = try seq(box)
        let run = try box.backup(args + ["--verbose"])
        let after = try seq(box)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(writer.isRunning, "the writer must still be running: the backup raced it")
        XCTAssertGreaterThan(after, before, "the writer committed while the backup ran")

        let name = try XCTUnwrap(try box.backupFiles().first)
        let manifest = try box.manifest(name)
        XCTAssertEqual(manifest["verified"] as? Bool, true)
        let checks = try XCTUnwrap(manifest["checks"] as? [[String: Any]])
        XCTAssertTrue(checks.allSatisfy { $0["ok"] as? Bool == true }, "\(checks)")
        let restored = box.root + "/check.db"
        XCTAssertEqual(try box.gunzip(name, to: restored).status, 0)
        XCTAssertEqual((manifest["database"] as? [String: Any])?["sha256"] as? String, try box.sha256(restored))
        let check = try box.demo(["check", restored, "--min-seq", "\(before)"])
        XCTAssertEqual(check.status, 0, "consistent: \(check.stdout) \(check.stderr)")
        return try copied(run.stderr)
    }

    /// One page a step: as many steps as pages, so the copy never restarted although the
    /// writer committed between its steps.
    func testASteppedSnapshotUnderAWriterIsVerifiedAndConsistent() throws {
        let copied = try backupUnderAWriter(["--snapshot-step", "1"])
        XCTAssertEqual(copied.how, "1 page(s) a step")
        XCTAssertGreaterThan(copied.pages, 100)
        XCTAssertEqual(copied.steps, copied.pages, "one step per page, no restart")
    }

    func testASnapshotInStepsOfManyPagesUnderAWriterIsVerifiedAndConsistent() throws {
        let copied = try backupUnderAWriter(["--snapshot-step", "64"])
        XCTAssertEqual(copied.how, "64 page(s) a step")
        XCTAssertEqual(copied.steps, (copied.pages + 63) / 64, "no restart")
    }

    func testASnapshotAllAtOnceUnderAWriterIsVerifiedAndConsistent() throws {
        let copied = try backupUnderAWriter(["--snapshot-step", "all"])
        XCTAssertEqual(copied.how, "all at once")
        XCTAssertEqual(copied.steps, 1)
    }

    /// stderr is a pipe here, as under cron: the default copies all at once.
    func testWithoutATerminalTheSnapshotIsCopiedAllAtOnce() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 300)
        let run = try box.backup(["--verbose"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let copied = try copied(run.stderr)
        XCTAssertEqual(copied.how, "all at once")
        XCTAssertEqual(copied.steps, 1)
    }

    func testABadSnapshotStepIsAUsageErrorAndWritesNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 50)
        for value in ["0", "-5", "many", "2147483648", ""] {
            let run = try box.backup(["--snapshot-step", value])
            XCTAssertEqual(run.status, 2, "\(value): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("--snapshot-step"), "\(value): names the option: \(run.stderr)")
            XCTAssertTrue(run.stdout.isEmpty, run.stdout)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.backups), "nothing written")
    }
}
