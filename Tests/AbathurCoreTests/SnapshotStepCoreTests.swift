@testable import AbathurCore
import Foundation
import XCTest

/// The snapshot's step size is a field of `BackupRequest`, and the job tells its progress as
/// events, so a test can put a commit exactly between two steps of the copy: the stepped copy
/// holds one read transaction, so the backup is the database as it was when the copy began,
/// and it never restarts (FACTS.md 2).
final class SnapshotStepCoreTests: XCTestCase {
    /// What the sink saw, and the writer's connection that commits on the first progress event.
    final class Recorder: @unchecked Sendable {
        let writer: Connection
        var progress: [(done: Int64, total: Int64)] = []
        var finished: [Timeline.Step] = []
        var committed = false
        var failure: Error?

        init(writer: Connection) { self.writer = writer }

        func hear(_ event: Event) {
            switch event {
            case .progress(let step, let done, let total) where step == "snapshot":
                progress.append((done, total))
                guard !committed else { return }
                do {
                    try writer.execute("INSERT INTO t(pad) VALUES (randomblob(1000)); UPDATE counter SET n = n + 1")
                    committed = true
                } catch {
                    failure = error
                }
            case .stepFinished(let step):
                finished.append(step)
            default:
                break
            }
        }
    }

    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "abathur-snapshot-step-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root + "/live", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// A WAL database of 200 rows of 1000 bytes (over 50 pages) and a counter that every
    /// commit of the writer bumps with its row.
    func makeDatabase() throws -> String {
        let path = root + "/live/live.db"
        // An empty file is an empty database to SQLite.
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        let db = try Connection(path: path, mode: .readWrite, busyTimeoutMs: 5000)
        try db.execute("""
        PRAGMA journal_mode=WAL;
        CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB);
        CREATE TABLE counter(n INTEGER);
        INSERT INTO counter VALUES (200);
        WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 200) INSERT INTO t(pad) SELECT randomblob(1000) FROM i;
        """)
        return path
    }

    func request(_ database: String, step: SnapshotStep) throws -> BackupRequest {
        let settings = try Settings(flags: [Setting.database.key: database, Setting.backupDir.key: root + "/backups",
                                            Setting.expectTables.key: "", Setting.expectMinIndexes.key: "0"],
                                    configPath: "/dev/null", environment: [:])
        var request = try BackupRequest(settings: settings, toolVersion: "test")
        request.snapshotStep = step
        return request
    }

    func run(_ step: SnapshotStep) throws -> (BackupJob.Outcome, Recorder, String) {
        let database = try makeDatabase()
        // The service is running: its connection has written, so the -wal and -shm are there
        // (with neither, the backup reads the main file alone and, seeing a -wal appear
        // after, reads again: `LiveReader`).
        let writer = try Connection(path: database, mode: .readWrite, busyTimeoutMs: 5000)
        try writer.execute("UPDATE counter SET n = n")
        let recorder = Recorder(writer: writer)
        let outcome = try BackupJob(request: try request(database, step: step), events: EventSink { recorder.hear($0) }).run()
        XCTAssertNil(recorder.failure)
        return (outcome, recorder, database)
    }

    func testACommitBetweenTwoStepsIsNotInTheSnapshotAndTheCopyNeverRestarts() throws {
        let (outcome, recorder, database) = try run(.pages(4))
        XCTAssertTrue(recorder.committed, "the writer committed between two steps of the copy")
        let live = try Connection(path: database, mode: .readOnly, busyTimeoutMs: 5000)
        XCTAssertEqual(try live.integer("SELECT count(*) FROM t"), 201, "the commit is in the live database")

        let manifest = outcome.manifest
        XCTAssertTrue(manifest.verified)
        XCTAssertEqual(manifest.rowCounts["t"], 200, "the snapshot is the database as it was when the copy began")
        let pages = manifest.database.pageCount
        XCTAssertEqual(recorder.progress.count, Int((pages + 3) / 4) - 1, "a progress event after each step but the last")
        XCTAssertEqual(recorder.progress.map(\.total), Array(repeating: pages, count: recorder.progress.count))
        XCTAssertEqual(recorder.progress.map(\.done), recorder.progress.indices.map { Int64(4 * ($0 + 1)) }, "never restarted")
        let snapshot = try XCTUnwrap(recorder.finished.first { $0.name == "snapshot" })
        XCTAssertEqual(snapshot.detail, "\(pages) page(s) copied in \((pages + 3) / 4) step(s), 4 page(s) a step, in one read transaction")
        // The checks run beside the compression and the read-back, and are recorded when they
        // are joined, after them.
        XCTAssertEqual(recorder.finished.map(\.name), ["snapshot", "compress", "reverify", "checks"])
        XCTAssertEqual(Set(manifest.durationsMs.keys), ["snapshot", "checks", "compress", "reverify", "total"])
    }

    func testAllAtOnceCopiesInOneStepWithoutProgress() throws {
        let (outcome, recorder, _) = try run(.allAtOnce)
        XCTAssertTrue(recorder.progress.isEmpty, "one step: nothing between steps")
        XCTAssertFalse(recorder.committed)
        XCTAssertTrue(outcome.manifest.verified)
        XCTAssertEqual(outcome.manifest.rowCounts["t"], 200)
        let snapshot = try XCTUnwrap(recorder.finished.first { $0.name == "snapshot" })
        XCTAssertEqual(snapshot.detail, "\(outcome.manifest.database.pageCount) page(s) copied in 1 step(s), all at once, in one read transaction")
    }

    func testSnapshotStepParsesPagesOrAll() {
        XCTAssertEqual(SnapshotStep("all"), .allAtOnce)
        XCTAssertEqual(SnapshotStep("1"), .pages(1))
        XCTAssertEqual(SnapshotStep("2147483647"), .pages(Int32.max))
        for bad in ["0", "-1", "", "ALL", "1.5", "2147483648", " 4"] {
            XCTAssertNil(SnapshotStep(bad), bad)
        }
    }
}
