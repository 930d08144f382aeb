import Foundation
import XCTest
@testable import AbathurTestSupport

/// `abathur-demo create` is deterministic (issue 14): the benchmarks create their database once
/// and reuse it across scripts and runs, and two machines benchmark the same bytes. Its random-
/// looking parts (hex ids, checkpoint data, embedding vectors) come from the seeded `demo_blob`
/// function instead of `randomblob`, and stay as incompressible as they were: gzip -6 still
/// leaves about 27% of the database.
final class DemoDeterminismTests: XCTestCase {
    func testTheSameRowsMakeTheSameFileWithTheSameCompressibility() throws {
        let sandbox = try Sandbox()
        let first = sandbox.root + "/first.db", second = sandbox.root + "/second.db"
        try sandbox.makeDemoDatabase(rows: 2000, at: first)
        try sandbox.makeDemoDatabase(rows: 2000, at: second)
        for path in [first, second] {
            // Closed cleanly: the main file holds everything, so its bytes are the database.
            XCTAssertFalse(FileManager.default.fileExists(atPath: path + "-wal"), "\(path)-wal left behind")
            XCTAssertEqual(try sandbox.query(path, "PRAGMA integrity_check"), "ok")
        }
        XCTAssertEqual(try sandbox.sha256(first), try sandbox.sha256(second), "two `create --rows 2000` files differ")
        XCTAssertEqual(try sandbox.query(first, "SELECT count(*) FROM tasks"), "2000")

        // The seeded bytes differ from row to row and from column to column, as randomblob's did.
        XCTAssertEqual(try sandbox.query(first, "SELECT count(DISTINCT substr(description, -96)) FROM tasks"), "2000")
        XCTAssertEqual(try sandbox.query(first, "SELECT count(DISTINCT vector) = count(*) FROM document_embeddings_data"), "1")
        XCTAssertEqual(try sandbox.query(first, "SELECT count(DISTINCT content_hash) = count(*) FROM document_index"), "1")
        XCTAssertEqual(try sandbox.query(first, """
            SELECT count(*) FROM tasks t JOIN document_index d ON d.id = t.id
            WHERE substr(t.description, -96, 64) = d.content_hash
            """), "0", "two columns share their random bytes")

        // gzip -6 leaves about 27% of the database (26% at 2000 rows, 27.5% at 64 MiB, as with
        // randomblob): all-zero or repeating bytes would fall far below, a wider random part
        // far above.
        let bytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: first)[.size] as? Int)
        let gzip = try Sandbox.shell("gzip -6 -c '\(first)' | wc -c")
        XCTAssertEqual(gzip.status, 0, gzip.stderr)
        let gzipped = try XCTUnwrap(Int(gzip.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let ratio = Double(gzipped) / Double(bytes)
        XCTAssert((0.23...0.31).contains(ratio), "gzip -6 leaves \(gzipped) of \(bytes) bytes (\(ratio)), expected 23-31%")
    }

    func testMoreRowsMakeADifferentFile() throws {
        let sandbox = try Sandbox()
        let small = sandbox.root + "/small.db", large = sandbox.root + "/large.db"
        try sandbox.makeDemoDatabase(rows: 2000, at: small)
        try sandbox.makeDemoDatabase(rows: 2001, at: large)
        XCTAssertNotEqual(try sandbox.sha256(small), try sandbox.sha256(large))
        // The rows both have are the same rows: the bytes depend on the row number, not on the scale.
        XCTAssertEqual(try sandbox.query(small, "SELECT description FROM tasks WHERE id = 1234"),
                       try sandbox.query(large, "SELECT description FROM tasks WHERE id = 1234"))
    }
}
