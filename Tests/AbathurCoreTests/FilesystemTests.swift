@testable import AbathurCore
import Foundation
import XCTest

/// `DatabaseFiles`, `Filesystem` and `SpaceBudget` on real files and a real tmpfs (mounted by
/// the test, as root, and unmounted after), and the budget's one rule on filesystems given
/// as values.
final class FilesystemTests: XCTestCase {
    var dir = ""
    var mounted: String?

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "fs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let mounted { XCTAssertEqual(shell("umount '\(mounted)'"), 0) }
        try? FileManager.default.removeItem(atPath: dir)
    }

    @discardableResult
    func shell(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try? process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// A tmpfs of `mib` MiB with `inodes` inodes at `dir/fs`.
    func mountTmpfs(mib: Int, inodes: Int) throws -> String {
        let path = dir + "/fs"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTAssertEqual(shell("mount -t tmpfs -o size=\(mib)m,nr_inodes=\(inodes),mode=0700 tmpfs '\(path)'"), 0, "this test needs root and tmpfs")
        mounted = path
        return path
    }

    func testDatabaseFilesNameEachFileOnce() throws {
        let files = DatabaseFiles(dir + "/a.db")
        XCTAssertEqual(files.main, dir + "/a.db")
        XCTAssertEqual(files.wal, dir + "/a.db-wal")
        XCTAssertEqual(files.shm, dir + "/a.db-shm")
        XCTAssertEqual(files.journal, dir + "/a.db-journal")
        XCTAssertEqual(files.companions, [files.wal, files.shm, files.journal])
        XCTAssertEqual(files.all, [files.main] + files.companions)
        XCTAssertEqual(DatabaseFiles.File.transactions, [.wal, .journal])
        XCTAssertEqual(try files.existing(), [])
        XCTAssertEqual(try files.size(), 0)
        try Data(count: 100).write(to: URL(fileURLWithPath: files.main))
        try Data(count: 30).write(to: URL(fileURLWithPath: files.wal))
        try Data(count: 7).write(to: URL(fileURLWithPath: files.journal))
        XCTAssertEqual(try files.existing(), [.main, .wal, .journal])
        XCTAssertEqual(try files.existing(DatabaseFiles.File.companions), [.wal, .journal])
        XCTAssertEqual(try files.size(), 137)
        XCTAssertEqual(try files.size(of: DatabaseFiles.File.transactions), 37)
    }

    func testFilesystemOfATmpfs() throws {
        let fs = try mountTmpfs(mib: 8, inodes: 64)
        let empty = try Filesystem.of(fs)
        XCTAssertEqual(empty.path, fs)
        XCTAssertEqual(empty.totalBytes, 8 << 20)
        XCTAssertEqual(empty.freeBytes, 8 << 20, "tmpfs reserves nothing for root")
        XCTAssertEqual(empty.freeBytesForRoot, 8 << 20)
        XCTAssertEqual(empty.usedBytes, 0)
        XCTAssertEqual(empty.totalInodes, 64)
        XCTAssertFalse(empty.readOnly)
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: fs + "/one-mib"))
        let after = try Filesystem.of(fs)
        XCTAssertEqual(after.freeBytes, empty.freeBytes - (1 << 20))
        XCTAssertEqual(after.usedBytes, 1 << 20)
        XCTAssertEqual(after.freeInodes, empty.freeInodes - 1)
        XCTAssertEqual(after.freeInodesForRoot, empty.freeInodesForRoot - 1)
        XCTAssertEqual(shell("mount -o remount,ro '\(fs)'"), 0)
        XCTAssertTrue(try Filesystem.of(fs).readOnly)
    }

    /// Two paths on one filesystem are counted once; a path that does not exist yet is
    /// counted on the filesystem it would be created on.
    func testDistinctFilesystemsAreCountedOnce() throws {
        let fs = try mountTmpfs(mib: 4, inodes: 64)
        let here = try Filesystem.of(dir)
        XCTAssertNotEqual(here.device, try Filesystem.of(fs).device)
        try FileManager.default.createDirectory(atPath: dir + "/other", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: fs + "/backups", withIntermediateDirectories: true)
        let distinct = try Filesystem.distinct(holding: [dir, fs, fs + "/not/yet/there", dir + "/other", fs + "/backups", "/proc"])
        XCTAssertEqual(distinct.map(\.path), [dir, fs, "/proc"])
        XCTAssertEqual(Filesystem.existingAncestor(of: fs + "/not/yet/there"), fs)
        XCTAssertEqual(try Filesystem.holding(fs + "/not/yet").device, try Filesystem.of(fs).device)
    }

    func filesystem(totalMiB: Int64, freeMiB: Int64) -> Filesystem {
        Filesystem(path: "/x", device: 1, totalBytes: totalMiB << 20, freeBytes: freeMiB << 20, freeBytesForRoot: freeMiB << 20,
                   totalInodes: 10, freeInodes: 10, freeInodesForRoot: 10, readOnly: false)
    }

    /// One rule: bytes plus the 1 MiB margin must fit in what may be used, which keeps 10% of
    /// the filesystem free for scratch copies and is every free byte for the copies that keep
    /// data safe.
    func testSpaceBudgetRule() throws {
        let fs = filesystem(totalMiB: 100, freeMiB: 20)
        let scratch = SpaceBudget(directory: "/x", filesystem: fs, headroom: .keepTenPercent)
        XCTAssertEqual(scratch.sizeBytes, 100 << 20)
        XCTAssertEqual(scratch.bytes, 10 << 20, "20 MiB free less the 10 MiB that keeps it at or below 90% used")
        XCTAssertNil(scratch.shortage((9 << 20), for: "x"))
        let short = try XCTUnwrap(scratch.shortage((9 << 20) + 1, for: "inflating x"))
        XCTAssertEqual(short, "\(20 << 20) bytes free, inflating x needs \((10 << 20) + 1); at most \(10 << 20) may be used here, to keep the filesystem at or below 90% used")
        XCTAssertEqual(InflationLimit.budget(scratch).bytes, 9 << 20, "an inflation stops at the budget less the margin")

        let keep = SpaceBudget(directory: "/x", filesystem: fs, headroom: .allFree)
        XCTAssertEqual(keep.bytes, 20 << 20)
        XCTAssertNil(keep.shortage(19 << 20, for: "x"))
        XCTAssertEqual(keep.shortage((19 << 20) + 1, for: "the safety copy of y"), "\(20 << 20) bytes free, the safety copy of y needs \((20 << 20) + 1)")
        XCTAssertThrowsError(try keep.require((19 << 20) + 1, for: "y")) { error in
            XCTAssertEqual((error as? AbathurError)?.path, "/x")
        }
        let full = SpaceBudget(directory: "/x", filesystem: filesystem(totalMiB: 100, freeMiB: 5), headroom: .keepTenPercent)
        XCTAssertEqual(full.bytes, 0, "past 90% used nothing may be written")
    }
}
