import CZlib

/// A zlib failure, with zlib's own message.
public struct GzipError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Streaming gzip decompression. Any error zlib reports (bad header, bad CRC-32, bad length,
/// bad deflate data) is fatal (FACTS.md 6); so is input that ends before the stream does.
/// Concatenated gzip members are accepted, as `gunzip` accepts them.
public final class GzipDecompressor {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var output = [UInt8](repeating: 0, count: 256 * 1024)
    private var inMember = false
    private var sawMember = false

    public init() throws(GzipError) {
        stream.initialize(to: z_stream())
        let rc = abathur_inflate_init_gzip(stream)
        guard rc == Z_OK else {
            stream.deallocate()
            throw GzipError(description: "inflate init failed (zlib \(rc))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    public func decompress(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard input.count > 0 else { return }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        let capacity = output.count
        try output.withUnsafeMutableBytes { out in
            while stream.pointee.avail_in > 0 {
                inMember = true
                stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(capacity)
                let rc = inflate(stream, Z_NO_FLUSH)
                let produced = capacity - Int(stream.pointee.avail_out)
                if produced > 0 { try sink(UnsafeRawBufferPointer(rebasing: out[0..<produced])) }
                switch rc {
                case Z_STREAM_END:
                    inMember = false
                    sawMember = true
                    inflateReset(stream)
                case Z_OK:
                    continue
                case Z_BUF_ERROR where produced == 0 && stream.pointee.avail_in == 0:
                    return
                default:
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                    throw GzipError(description: "corrupt gzip data: \(message)")
                }
            }
        }
    }

    /// Call at end of input: throws when the last member is incomplete or there was none.
    public func finish() throws {
        if inMember { throw GzipError(description: "truncated gzip data (unexpected end of file)") }
        if !sawMember { throw GzipError(description: "empty input, not gzip data") }
    }
}
