/// Small text files (config, manifests) read whole.
public enum TextFile {
    /// Reads a regular file of at most `limit` bytes. A missing file is a usage error.
    public static func read(_ path: String, limit: Int = 16 << 20) throws -> String {
        String(decoding: try readRegular(path, limit: limit), as: UTF8.self)
    }

    /// The bytes of a regular file of at most `limit` bytes. A missing file is a usage error.
    public static func readRegular(_ path: String, limit: Int = 16 << 20) throws -> [UInt8] {
        guard let status = try FileStatus.of(path) else {
            throw AbathurError(.usage, path, "no such file")
        }
        guard status.isRegular else { throw AbathurError(.unsafePath, path, "is \(FileDescriptor.kind(mode: status.mode)), not a regular file") }
        guard status.size <= limit else { throw AbathurError(.tooLarge, path, "larger than \(limit) bytes") }
        return try readBytes(path, limit: limit)
    }

    public static func readBytes(_ path: String, limit: Int) throws -> [UInt8] {
        let file = try FileDescriptor.openForReading(path)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try chunk.withUnsafeMutableBytes { (buffer) in try file.read(into: buffer) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > limit { throw AbathurError(.tooLarge, path, "larger than \(limit) bytes") }
        }
        try file.close()
        return bytes
    }
}
