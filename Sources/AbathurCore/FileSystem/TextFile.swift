/// Small text files (config, manifests) read whole.
public enum TextFile {
    /// Reads a regular file of at most `limit` bytes. A missing file is a usage error.
    public static func read(_ path: String, limit: Int = 16 << 20) throws -> String {
        guard let status = try FileStatus.of(path) else {
            throw AbathurError(.usage, path, "no such file")
        }
        guard status.isRegular else { throw AbathurError(.refused, path, "not a regular file") }
        guard status.size <= limit else { throw AbathurError(.refused, path, "larger than \(limit) bytes") }
        let bytes = try readBytes(path, limit: limit)
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func readBytes(_ path: String, limit: Int) throws -> [UInt8] {
        let file = try FileDescriptor.openForReading(path)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try chunk.withUnsafeMutableBytes { (buffer) in try file.read(into: buffer) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > limit { throw AbathurError(.refused, path, "larger than \(limit) bytes") }
        }
        try file.close()
        return bytes
    }
}
