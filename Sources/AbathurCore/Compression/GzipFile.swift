/// Sizes and SHA-256 hashes of both sides of a gzip file.
public struct GzipDigest: Sendable, Equatable {
    public var gzSHA256: String
    public var gzBytes: Int64
    public var rawSHA256: String
    public var rawBytes: Int64
}

/// Whole-file gzip work in bounded memory: one read buffer, zlib's state, one output chunk.
public enum GzipFile {
    /// Compresses everything readable from `input` into `output`, hashing both sides.
    public static func compress(from input: FileDescriptor, to output: FileDescriptor, level: Int,
                                progress: ((Int64) -> Void)? = nil) throws -> GzipDigest {
        let compressor = try GzipCompressor(level: level)
        var rawHash = SHA256(), gzHash = SHA256()
        var rawBytes: Int64 = 0, gzBytes: Int64 = 0
        let sink: (UnsafeRawBufferPointer) throws -> Void = { chunk in
            gzHash.update(chunk)
            gzBytes += Int64(chunk.count)
            try output.write(chunk)
        }
        try input.forEachChunk { chunk in
            rawHash.update(chunk)
            rawBytes += Int64(chunk.count)
            try compressor.compress(chunk, sink: sink)
            progress?(rawBytes)
        }
        try compressor.finish(sink: sink)
        return GzipDigest(gzSHA256: gzHash.finalizeHex(), gzBytes: gzBytes, rawSHA256: rawHash.finalizeHex(), rawBytes: rawBytes)
    }

    /// Reads a gzip stream from `input` to its end, hashing both sides; every inflated chunk
    /// goes to `output` when one is given. A decompressor error throws (exit 3 by default).
    public static func decompress(from input: FileDescriptor, to output: FileDescriptor? = nil,
                                  progress: ((Int64) -> Void)? = nil) throws -> GzipDigest {
        let decompressor = try GzipDecompressor()
        var rawHash = SHA256(), gzHash = SHA256()
        var rawBytes: Int64 = 0, gzBytes: Int64 = 0
        let sink: (UnsafeRawBufferPointer) throws -> Void = { chunk in
            rawHash.update(chunk)
            rawBytes += Int64(chunk.count)
            try output?.write(chunk)
        }
        do {
            try input.forEachChunk { chunk in
                gzHash.update(chunk)
                gzBytes += Int64(chunk.count)
                try decompressor.decompress(chunk, sink: sink)
                progress?(gzBytes)
            }
            try decompressor.finish()
        } catch let error as GzipError {
            throw AbathurError(.verificationFailed, input.path, error.description)
        }
        return GzipDigest(gzSHA256: gzHash.finalizeHex(), gzBytes: gzBytes, rawSHA256: rawHash.finalizeHex(), rawBytes: rawBytes)
    }

    public static func digest(of path: String) throws -> GzipDigest {
        let input = try FileDescriptor.openForReading(path)
        return try decompress(from: input)
    }

    /// SHA-256 of a file's bytes (no inflating).
    public static func sha256(of path: String) throws -> (hex: String, bytes: Int64) {
        var hash = SHA256()
        var total: Int64 = 0
        try FileDescriptor.openForReading(path).forEachChunk { chunk in
            hash.update(chunk)
            total += Int64(chunk.count)
        }
        return (hash.finalizeHex(), total)
    }
}
