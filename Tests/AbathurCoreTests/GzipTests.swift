import AbathurCore
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
}
