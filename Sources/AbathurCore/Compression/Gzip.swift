import CZlib

/// A zlib failure, with zlib's own message.
public struct GzipError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Streaming gzip compression on zlib (windowBits 15+16: zlib writes the gzip framing).
/// Memory is bounded by zlib's state plus one output chunk, whatever the input size.
public final class GzipCompressor {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var output = [UInt8](repeating: 0, count: 256 * 1024)

    public init(level: Int) throws(GzipError) {
        stream.initialize(to: z_stream())
        let rc = abathur_deflate_init_gzip(stream, Int32(level))
        guard rc == Z_OK else {
            stream.deallocate()
            throw GzipError(description: "deflate init failed (zlib \(rc))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Compresses `input`, handing every produced chunk to `sink`.
    public func compress(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(input, flush: Z_NO_FLUSH, sink: sink)
    }

    /// Ends the stream (writes the CRC-32 and size trailer).
    public func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH, sink: sink)
    }

    private func run(_ input: UnsafeRawBufferPointer, flush: Int32, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        let capacity = output.count
        try output.withUnsafeMutableBytes { out in
            while true {
                stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(capacity)
                let rc = deflate(stream, flush)
                guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                    throw GzipError(description: "deflate failed (zlib \(rc))")
                }
                let produced = capacity - Int(stream.pointee.avail_out)
                if produced > 0 { try sink(UnsafeRawBufferPointer(rebasing: out[0..<produced])) }
                if flush == Z_FINISH {
                    if rc == Z_STREAM_END { return }
                } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 {
                    return
                }
            }
        }
    }
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
