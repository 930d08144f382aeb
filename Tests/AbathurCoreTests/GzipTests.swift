@testable import AbathurCore
import Foundation
import XCTest

final class GzipTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "gz-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func shell(_ command: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Mixed compressible and random data, larger than every internal buffer.
    func sample(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { i in i % 3 == 0 ? UInt8.random(in: 0...255, using: &generator) : UInt8(i % 17) }
    }

    func compress(_ bytes: [UInt8], to path: String, level: Int = 6) throws -> GzipDigest {
        let input = dir + "/input"
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let source = try FileDescriptor.openForReading(input)
        let output = try FileDescriptor.createExclusive(path)
        let digest = try GzipFile.compress(from: source, to: output, level: level)
        try output.close()
        return digest
    }

    func testGunzipRestoresOurOutputByteForByte() throws {
        let bytes = sample(3 * 1024 * 1024 + 17)
        let gz = dir + "/x.gz"
        let digest = try compress(bytes, to: gz)
        XCTAssertEqual(try shell("gzip -t '\(gz)'"), 0)
        XCTAssertEqual(try shell("gunzip -c '\(gz)' > '\(dir)/out'"), 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/out")), Data(bytes))
        XCTAssertEqual(digest.rawSHA256, SHA256.hex(of: bytes))
        XCTAssertEqual(digest.rawBytes, Int64(bytes.count))
        XCTAssertEqual(digest.gzBytes, Int64(try Data(contentsOf: URL(fileURLWithPath: gz)).count))
        // Reading back gives the same digest on both sides.
        XCTAssertEqual(try GzipFile.digest(of: gz), digest)
    }

    func testReadsWhatGzipWrote() throws {
        let bytes = sample(200_000)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/plain"))
        XCTAssertEqual(try shell("gzip -9 -c '\(dir)/plain' > '\(dir)/plain.gz'"), 0)
        XCTAssertEqual(try GzipFile.digest(of: dir + "/plain.gz").rawSHA256, SHA256.hex(of: bytes))
    }

    /// FACTS.md 6: any decompressor error is fatal; the CRC catches what inflate alone would not.
    func testCorruptionIsAVerificationFailure() throws {
        let gz = dir + "/x.gz"
        _ = try compress(sample(500_000), to: gz)
        let good = try Data(contentsOf: URL(fileURLWithPath: gz))
        var cases: [(String, Data)] = []
        var flipped = good
        flipped[good.count / 2] ^= 0x01
        cases.append(("bit flip", flipped))
        var crc = good
        crc[good.count - 6] ^= 0xff
        cases.append(("bad CRC", crc))
        cases.append(("truncated", good.prefix(good.count - 100)))
        cases.append(("trailer cut", good.prefix(good.count - 4)))
        cases.append(("empty", Data()))
        cases.append(("not gzip", Data(repeating: 0x41, count: 1000)))
        for (name, data) in cases {
            let path = dir + "/bad-\(name.replacingOccurrences(of: " ", with: "-"))"
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try GzipFile.digest(of: path), name) { error in
                XCTAssertEqual((error as? AbathurError)?.kind, .damagedBackup, "\(name): \(error)")
            }
        }
    }

    // MARK: members compressed and inflated on every core (ParallelGzip)

    /// Offsets of the members in a file we wrote, from their headers' length fields.
    func memberOffsets(_ data: Data) -> [Int] {
        var offsets: [Int] = []
        var at = 0
        while at + 20 <= data.count {
            offsets.append(at)
            let length = Int(data[at + 16]) | Int(data[at + 17]) << 8 | Int(data[at + 18]) << 16 | Int(data[at + 19]) << 24
            at += length
        }
        return offsets
    }

    func testMembersOfOneMebibyteThatGunzipPigzAndZlibRead() throws {
        for size in [0, 1, 1 << 20, (1 << 20) + 1, 5 * (1 << 20) + 12345] {
            let bytes = sample(size)
            let gz = dir + "/m\(size).gz"
            let digest = try compress(bytes, to: gz)
            let data = try Data(contentsOf: URL(fileURLWithPath: gz))
            // One member per started MiB (one for an empty file), each with our length field.
            XCTAssertEqual(memberOffsets(data).count, max(1, (size + (1 << 20) - 1) >> 20), "size \(size)")
            for tool in ["gunzip -c", "pigz -dc"] {
                XCTAssertEqual(try shell("\(tool) '\(gz)' > '\(dir)/out'"), 0, "\(tool), size \(size)")
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/out")), Data(bytes), "\(tool), size \(size)")
            }
            // zlib, through the streaming path a pipe takes.
            XCTAssertEqual(try shell("python3 -c 'import sys, zlib; d = zlib.decompressobj(31); out = b\"\"; data = open(sys.argv[1], \"rb\").read()\nwhile data:\n    out += d.decompress(data); data = d.unused_data; d = zlib.decompressobj(31) if data else d\nopen(sys.argv[2], \"wb\").write(out)' '\(gz)' '\(dir)/zlib'"), 0)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/zlib")), Data(bytes), "zlib, size \(size)")
            XCTAssertEqual(try GzipFile.digest(of: gz), digest, "size \(size)")
            XCTAssertEqual(digest.rawSHA256, SHA256.hex(of: bytes))
        }
    }

    /// A stream (a pipe) goes through zlib, a file through the members: the same digest.
    func testAPipeAndAFileGiveTheSameDigest() throws {
        let bytes = sample(3 * (1 << 20) + 5)
        let gz = dir + "/p.gz"
        let digest = try compress(bytes, to: gz)
        // cat writes the file into a pipe; we read the pipe's other end.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/cat")
        process.arguments = [gz]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let piped = try GzipFile.decompress(from: FileDescriptor.openForReading("/proc/self/fd/\(pipe.fileHandleForReading.fileDescriptor)", followSymlinks: true, anyType: true))
        process.waitUntilExit()
        XCTAssertEqual(piped, digest)
    }

    /// Damage in any one member is found and named, wherever it is.
    func testADamagedMemberIsNamed() throws {
        let gz = dir + "/d.gz"
        _ = try compress(sample(4 * (1 << 20)), to: gz)
        let good = try Data(contentsOf: URL(fileURLWithPath: gz))
        let offsets = memberOffsets(good)
        XCTAssertEqual(offsets.count, 4)
        let third = offsets[2], fourth = offsets[3]
        var cases: [(String, Data, String)] = []
        var flipped = good
        flipped[(third + fourth) / 2] ^= 0x10
        cases.append(("flip in member 2", flipped, "member 2 at byte \(third)"))
        var crc = good
        crc[fourth - 8] ^= 0x01
        cases.append(("CRC of member 2", crc, "member 2 at byte \(third) or after it: CRC-32 mismatch"))
        var size = good
        size[fourth - 4] ^= 0x01
        cases.append(("ISIZE of member 2", size, "member 2 at byte \(third)"))
        cases.append(("cut inside member 3", good.prefix(fourth + 100), "after byte \(fourth), where the members end"))
        cases.append(("trailing garbage", good + Data([1, 2, 3]), "after byte \(good.count), where the members end"))
        for (name, data, mention) in cases {
            let path = dir + "/bad"
            try? FileManager.default.removeItem(atPath: path)
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try GzipFile.digest(of: path), name) { error in
                XCTAssertEqual((error as? AbathurError)?.kind, .damagedBackup, "\(name): \(error)")
                XCTAssertTrue("\(error)".contains(mention), "\(name): \(error)")
            }
            XCTAssertNotEqual(try shell("gunzip -t '\(path)' 2>/dev/null"), 0, "gunzip accepts \(name)")
        }
        // A damaged length field hides nothing: the data is whole, gunzip restores it, and so
        // does the zlib inflation that takes over from the member it no longer finds.
        var length = good
        length[third + 17] ^= 0x01
        let path = dir + "/length"
        try length.write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try shell("gunzip -t '\(path)'"), 0)
        XCTAssertEqual(try GzipFile.digest(of: path).rawSHA256, try GzipFile.digest(of: gz).rawSHA256)
    }

    /// The limit stops an inflation before the write that would pass it, on both paths.
    func testTheLimitHoldsOnEveryCore() throws {
        let gz = dir + "/l.gz"
        _ = try compress(sample(3 * (1 << 20)), to: gz)
        let out = try FileDescriptor.createExclusive(dir + "/out")
        let limit = InflationLimit(bytes: 2 * (1 << 20) + 1, bound: .manifest)
        XCTAssertThrowsError(try GzipFile.decompress(from: FileDescriptor.openForReading(gz), to: out, limit: limit)) { error in
            XCTAssertEqual((error as? AbathurError)?.kind, .damagedBackup)
        }
        XCTAssertEqual(try out.status().size, 2 * (1 << 20), "wrote past the last member that fits")
    }
}
