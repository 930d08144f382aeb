/// Gzip on every core, in bounded memory: a file cut into `GzipMember` chunks, each compressed
/// or inflated by a worker thread (idle CPU priority, `Threads.start`), while the calling
/// thread hashes both sides and writes, in order. Memory is two buffers of about 1 MiB per
/// slot, two slots per worker, at most 8 workers, whatever the file's size.
enum ParallelGzip {
    /// Worker threads: one per available CPU, at most 8.
    static var workerCount: Int { min(8, Threads.available) }

    /// One job's buffers, reused by every job that takes the slot.
    final class Slot {
        let raw: UnsafeMutableRawBufferPointer
        let member: UnsafeMutableRawBufferPointer
        var rawCount = 0
        var memberCount = 0
        /// Why the member in the slot did not check out (inflating only).
        var problem: String?

        init(memberCapacity: Int) {
            raw = .allocate(byteCount: GzipMember.rawSize, alignment: 16)
            member = .allocate(byteCount: memberCapacity, alignment: 16)
        }

        deinit {
            raw.deallocate()
            member.deallocate()
        }

        var rawBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[0..<rawCount]) }
        var memberBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: member[0..<memberCount]) }
    }

    final class Compressing {
        let deflate: DeflateCompressor
        init(level: Int) throws { deflate = try DeflateCompressor(level: level) }
    }

    final class Inflating {
        let inflate = try! DeflateDecompressor()
    }

    /// Compresses the `input` file's bytes into `output` as members of `GzipMember.rawSize`
    /// bytes (one empty member for an empty file), hashing both sides. `cancellation` is
    /// checked after each member.
    static func compress(from input: FileDescriptor, to output: FileDescriptor, level: Int, cancellation: Cancellation? = nil,
                         progress: ((Int64) -> Void)? = nil) throws -> GzipDigest {
        let size = try input.status().size
        let chunks = max(1, Int((size + Int64(GzipMember.rawSize) - 1) / Int64(GzipMember.rawSize)))
        let workers: [Compressing]
        do {
            workers = try (0..<workerCount).map { _ in try Compressing(level: level) }
        } catch {
            throw AbathurError(.internal, output.path, "\(error)")
        }
        let capacity = GzipMember.maxLength(deflateBound: workers[0].deflate.bound(GzipMember.rawSize))
        let slots = (0..<max(4, 2 * workers.count)).map { _ in Slot(memberCapacity: capacity) }
        var rawHash = SHA256(), gzHash = SHA256()
        var rawBytes: Int64 = 0, gzBytes: Int64 = 0
        let pipeline = OrderedPipeline<Int, Slot, Compressing>(slots: slots, workers: workers, idle: true)
        try pipeline.run(claim: { index in
            index < chunks ? index : nil
        }, work: { worker, index, slot in
            let offset = Int64(index) * Int64(GzipMember.rawSize)
            let want = Int(min(Int64(GzipMember.rawSize), size - offset))
            slot.rawCount = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: slot.raw[0..<want]), at: offset)
            guard slot.rawCount == want else {
                throw AbathurError(.internal, input.path, "ended at byte \(offset + Int64(slot.rawCount)) while it was being compressed; it had \(size) bytes")
            }
            let body = UnsafeMutableRawBufferPointer(rebasing: slot.member[GzipMember.headerSize..<(capacity - GzipMember.trailerSize)])
            let deflated: Int
            do {
                deflated = try worker.deflate.compress(slot.rawBytes, into: body)
            } catch {
                throw AbathurError(.internal, output.path, "\(error)")
            }
            GzipMember.writeHeader(into: slot.member, deflated: deflated)
            GzipMember.writeTrailer(into: slot.member, at: GzipMember.headerSize + deflated, crc: CRC32.of(slot.rawBytes), size: slot.rawCount)
            slot.memberCount = GzipMember.headerSize + deflated + GzipMember.trailerSize
        }, consume: { _, slot in
            try cancellation?.check()
            rawHash.update(slot.rawBytes)
            rawBytes += Int64(slot.rawCount)
            gzHash.update(slot.memberBytes)
            gzBytes += Int64(slot.memberCount)
            try output.write(slot.memberBytes)
            progress?(rawBytes)
        })
        guard try input.status().size == size else {
            throw AbathurError(.internal, input.path, "changed size while it was being compressed")
        }
        return GzipDigest(gzSHA256: gzHash.finalizeHex(), gzBytes: gzBytes, rawSHA256: rawHash.finalizeHex(), rawBytes: rawBytes)
    }

    /// Where a member lies in the file.
    struct Member {
        var index: Int
        var offset: Int64
        var length: Int
    }

    /// What stops the parallel inflation at a member that does not check out: zlib takes over
    /// from `member` on and gives the verdict (`decompress`).
    struct Handover: Error {
        var member: Member
        var problem: String
    }

    /// Inflates the gzip file `input` (a regular file) into `output` when given, hashing both
    /// sides. Its members in `GzipMember` format are inflated in parallel, each checked
    /// against its CRC-32 and length. From the first byte that is not such a member (the
    /// whole file, for a gzip written by anything else), or the first member that does not
    /// check out, zlib's streaming inflation takes over, continuing the same hashes: zlib is
    /// the reference, so a file `gunzip` restores is restored (a damaged length field alone
    /// costs only speed), and damage is reported by zlib, with the member it was in. Every
    /// failure is a bad backup (exit 3); `limit` is checked before each write.
    static func decompress(from input: FileDescriptor, to output: FileDescriptor?, limit: InflationLimit?,
                           progress: ((Int64) -> Void)? = nil) throws -> GzipDigest {
        let size = try input.status().size
        let source = input.path
        var next: Int64 = 0
        var header = [UInt8](repeating: 0, count: GzipMember.headerSize)
        let workers = (0..<workerCount).map { _ in Inflating() }
        let capacity = GzipMember.maxLength(deflateBound: DeflateBound.worst(GzipMember.rawSize))
        let slots = (0..<max(4, 2 * workers.count)).map { _ in Slot(memberCapacity: capacity) }
        var state = Inflation.State()
        var handover: Handover?
        let pipeline = OrderedPipeline<Member, Slot, Inflating>(slots: slots, workers: workers, idle: true)
        do {
            try pipeline.run(claim: { index in
                guard next < size else { return nil }
                let read = try header.withUnsafeMutableBytes { try input.read(into: $0, at: next) }
                guard read == GzipMember.headerSize, let length = header.withUnsafeBytes({ GzipMember.length(ofHeader: $0) }),
                      length <= capacity, next + Int64(length) <= size else { return nil }
                defer { next += Int64(length) }
                return Member(index: index, offset: next, length: length)
            }, work: { worker, member, slot in
                slot.problem = nil
                slot.memberCount = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: slot.member[0..<member.length]), at: member.offset)
                guard slot.memberCount == member.length else { slot.problem = "the file changed while it was read"; return }
                let bytes = slot.memberBytes
                let crc = GzipMember.littleEndian(bytes, at: member.length - 8)
                let count = Int(GzipMember.littleEndian(bytes, at: member.length - 4))
                guard count <= GzipMember.rawSize else { slot.problem = "its trailer says \(count) bytes"; return }
                slot.rawCount = count
                do {
                    try worker.inflate.decompress(UnsafeRawBufferPointer(rebasing: bytes[GzipMember.headerSize..<(member.length - GzipMember.trailerSize)]),
                                                  into: UnsafeMutableRawBufferPointer(rebasing: slot.raw[0..<count]))
                } catch {
                    slot.problem = "\(error)"
                    return
                }
                if CRC32.of(slot.rawBytes) != crc { slot.problem = "CRC-32 mismatch" }
            }, consume: { member, slot in
                if let problem = slot.problem { throw Handover(member: member, problem: problem) }
                try limit?.check(written: state.rawBytes, adding: slot.rawCount, source: source)
                state.add(gz: slot.memberBytes, raw: slot.rawBytes)
                try output?.write(slot.rawBytes)
                progress?(state.gzBytes)
            })
        } catch let stop as Handover {
            handover = stop
            next = stop.member.offset
        }
        guard next < size || state.gzBytes == 0 else { return state.digest() }
        // The rest, through zlib.
        let inflation = try Inflation(source: source, to: output, limit: limit, continuing: state)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset = next
        do {
            try buffer.withUnsafeMutableBytes { buffer in
                while true {
                    let n = try input.read(into: buffer, at: offset)
                    if n == 0 { break }
                    offset += Int64(n)
                    try inflation.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                    progress?(inflation.state.gzBytes)
                }
            }
            return try inflation.finish()
        } catch var error as AbathurError where error.kind == .damagedBackup {
            if let handover {
                error.message += " (in member \(handover.member.index) at byte \(handover.member.offset) or after it: \(handover.problem))"
            } else if next > 0 {
                error.message += " (after byte \(next), where the members end)"
            }
            throw error
        }
    }
}

/// The most raw DEFLATE can take for `count` input bytes: stored blocks (5 bytes per 64 KiB)
/// plus slack, as zlib's deflateBound computes it. A member longer than this for a
/// `GzipMember.rawSize` chunk is not one a compressor wrote.
enum DeflateBound {
    static func worst(_ count: Int) -> Int { count + (count >> 12) + (count >> 14) + (count >> 25) + 13 + 5 * (count / 65535 + 1) }
}
