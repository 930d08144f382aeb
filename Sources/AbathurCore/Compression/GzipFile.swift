#if canImport(Glibc)
import Glibc
#endif

/// Sizes and SHA-256 hashes of both sides of a gzip file.
public struct GzipDigest: Sendable, Equatable {
    public var gzSHA256: String
    public var gzBytes: Int64
    public var rawSHA256: String
    public var rawBytes: Int64
}

/// The one streaming inflation loop: a gzip stream fed chunk by chunk, inflated by zlib, both
/// sides hashed, every inflated chunk checked against `limit` before it is written to
/// `output`. A decompressor error is a bad backup (exit 3). `ParallelGzip.decompress` feeds
/// it what follows the members it inflates itself (a whole file, for a gzip we did not
/// write); `Candidate` feeds it a stream whose first bytes it had to look at first.
final class Inflation {
    /// Both hashes and sizes so far.
    struct State {
        var rawHash = SHA256(), gzHash = SHA256()
        var rawBytes: Int64 = 0
        var gzBytes: Int64 = 0

        mutating func add(gz: UnsafeRawBufferPointer, raw: UnsafeRawBufferPointer) {
            gzHash.update(gz)
            gzBytes += Int64(gz.count)
            addRaw(raw)
        }

        mutating func addRaw(_ raw: UnsafeRawBufferPointer) {
            rawHash.update(raw)
            rawBytes += Int64(raw.count)
        }

        mutating func digest() -> GzipDigest {
            GzipDigest(gzSHA256: gzHash.finalizeHex(), gzBytes: gzBytes, rawSHA256: rawHash.finalizeHex(), rawBytes: rawBytes)
        }
    }

    private let decompressor: GzipDecompressor
    private let source: String
    private let output: FileDescriptor?
    private let limit: InflationLimit?
    private(set) var state: State

    init(source: String, to output: FileDescriptor?, limit: InflationLimit?, continuing state: State = State()) throws {
        do {
            decompressor = try GzipDecompressor()
        } catch {
            throw AbathurError(.internal, source, error.description)
        }
        self.source = source
        self.output = output
        self.limit = limit
        self.state = state
    }

    var gzBytes: Int64 { state.gzBytes }

    func feed(_ chunk: UnsafeRawBufferPointer) throws {
        state.gzHash.update(chunk)
        state.gzBytes += Int64(chunk.count)
        do {
            try decompressor.decompress(chunk) { inflated in
                try limit?.check(written: state.rawBytes, adding: inflated.count, source: source)
                state.addRaw(inflated)
                try output?.write(inflated)
            }
        } catch let error as GzipError {
            throw AbathurError(.damagedBackup, source, error.description)
        }
    }

    /// At the end of the input: the digest, or why the stream is incomplete.
    func finish() throws -> GzipDigest {
        do {
            try decompressor.finish()
        } catch let error as GzipError {
            throw AbathurError(.damagedBackup, source, error.description)
        }
        return state.digest()
    }
}

/// Whole-file gzip work in bounded memory.
public enum GzipFile {
    /// The first two bytes of every gzip member (RFC 1952).
    public static let magic: [UInt8] = [0x1f, 0x8b]

    /// Compresses the file `input` into `output` as gzip members compressed on every core
    /// (`ParallelGzip`), hashing both sides. `cancellation` stops it between members.
    public static func compress(from input: FileDescriptor, to output: FileDescriptor, level: Int, cancellation: Cancellation? = nil,
                                progress: ((Int64) -> Void)? = nil) throws -> GzipDigest {
        try ParallelGzip.compress(from: input, to: output, level: level, cancellation: cancellation, progress: progress)
    }

    /// Reads a gzip stream from `input` to its end, hashing both sides; every inflated chunk
    /// goes to `output` when one is given. A regular file is inflated on every core as far as
    /// it is made of our members (`ParallelGzip.decompress`); anything else streams through
    /// zlib. A decompressor error throws (exit 3 by default); so does, before it is written,
    /// the chunk that would take the output past `limit`.
    public static func decompress(from input: FileDescriptor, to output: FileDescriptor? = nil, limit: InflationLimit? = nil,
                                  progress: ((Int64) -> Void)? = nil) throws -> GzipDigest {
        if try input.status().isRegular {
            return try ParallelGzip.decompress(from: input, to: output, limit: limit, progress: progress)
        }
        let inflation = try Inflation(source: input.path, to: output, limit: limit)
        try input.forEachChunk { chunk in
            try inflation.feed(chunk)
            progress?(inflation.gzBytes)
        }
        return try inflation.finish()
    }

    public static func digest(of path: String) throws -> GzipDigest {
        let input = try FileDescriptor.openForReading(path)
        return try decompress(from: input)
    }

    /// The bytes `path` will take once inflated, as far as can be told without inflating it:
    /// the larger of the file's size and gzip's recorded length of its last member (ISIZE,
    /// modulo 4 GiB). A bomb can fake ISIZE, so an inflation is also held to a limit as it
    /// runs (`InflationLimit`). A file that is not gzip counts its own size.
    public static func estimatedInflatedSize(of path: String) throws -> Int64 {
        let file = try FileDescriptor.openForReading(path, followSymlinks: true, anyType: true)
        let status = try file.status()
        guard status.isRegular, status.size >= 18 else { return status.size }
        var head = [UInt8](repeating: 0, count: 2)
        _ = try head.withUnsafeMutableBytes { try file.readFully(into: $0) }
        guard head == magic else { return status.size }
        var tail = [UInt8](repeating: 0, count: 4)
        let n = tail.withUnsafeMutableBytes { pread(file.raw, $0.baseAddress!, 4, off_t(status.size - 4)) }
        guard n == 4 else { return status.size }
        let isize = Int64(tail[0]) | Int64(tail[1]) << 8 | Int64(tail[2]) << 16 | Int64(tail[3]) << 24
        return max(status.size, isize)
    }

    /// Whether the file at `path` starts as a gzip stream does.
    public static func isGzip(_ path: String) throws -> Bool {
        let file = try FileDescriptor.openForReading(path)
        var head = [UInt8](repeating: 0, count: 2)
        let count = try head.withUnsafeMutableBytes { try file.readFully(into: $0) }
        return count == 2 && head == magic
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
