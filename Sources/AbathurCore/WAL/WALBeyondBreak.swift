/// What `repair --beyond-break` can build from a WAL whose chain breaks at one damaged frame:
/// the committed prefix plus every intact commit after the break, page by page (the newest
/// image of each page up to the last intact commit), read from the WAL without SQLite.
///
/// It applies only when the chain after the break verifies all the way to the last commit: one
/// damaged frame, not two. The damaged frame's image is used when its page number is
/// plausible; when a later commit writes the same page again, the damage costs nothing.
public struct WALBeyondBreak: Sendable {
    /// Page → byte offset of its newest image (after the committed prefix) in the WAL.
    public var images: [UInt32: Int64]
    /// The database size in pages after the last intact commit.
    public var databasePages: UInt32
    public var pageSize: Int
    /// The damaged frame, its page, and whether a later commit writes that page again.
    public var damagedFrame: Int?
    public var damagedPage: UInt32?
    public var damagedPageSuperseded: Bool
    /// The damaged frame's page number is not plausible: its image was left out, and the
    /// commit it belonged to may be incomplete.
    public var damagedPageUnplaceable: Bool
    /// Why it cannot be built, when it cannot.
    public var refusal: String?

    /// Reads the WAL at `path` (described by `wal`).
    public static func plan(_ path: String, _ wal: WALInspection) throws -> WALBeyondBreak {
        var plan = WALBeyondBreak(images: [:], databasePages: 0, pageSize: wal.pageSize, damagedFrame: nil, damagedPage: nil,
                                  damagedPageSuperseded: false, damagedPageUnplaceable: false, refusal: nil)
        guard let last = wal.dropped.last else {
            plan.refusal = "no intact commit lies after the break"
            return plan
        }
        plan.databasePages = last.databasePages
        let reader = try WALReader(path)
        defer { try? reader.close() }
        var damaged: (frame: Int, page: UInt32, offset: Int64)?
        while let frame = try reader.next(), frame.index <= last.commitFrame {
            let image = frame.offset + Int64(WALFrame.headerSize)
            switch frame.standing {
            case .valid:
                // Frames of the transaction the break cut through, before the break.
                if frame.index > wal.committedFrames { plan.images[frame.pageNumber] = image }
            case .firstInvalid(let reason):
                if reason == .saltMismatch && frame.checksumVerifies {
                    plan.images[frame.pageNumber] = image  // only the salt field is damaged
                } else {
                    damaged = (frame.index, frame.pageNumber, image)
                    if let page = damaged?.page, page > 0, page <= last.databasePages {
                        plan.images[page] = image
                    }
                }
            case .pastBreak:
                guard frame.saltsMatch else {
                    plan.refusal = "frame \(frame.index), before the last intact commit, belongs to another WAL generation"
                    return plan
                }
                guard frame.pageNumber != 0, frame.checksumVerifies else {
                    plan.refusal = "a second frame (\(frame.index)) fails its checksum: the chain after the break is not intact"
                    return plan
                }
                plan.images[frame.pageNumber] = image
                if let damaged, frame.pageNumber == damaged.page { plan.damagedPageSuperseded = true }
            }
        }
        if let damaged {
            plan.damagedFrame = damaged.frame
            plan.damagedPage = damaged.page
            plan.damagedPageUnplaceable = damaged.page == 0 || damaged.page > last.databasePages
        }
        return plan
    }

    /// Writes the planned page images into `target` (a copy of the database as the committed
    /// prefix leaves it) and sets its size; fsyncs it.
    public func apply(from walPath: String, to target: String) throws {
        let wal = try FileDescriptor.openForReading(walPath)
        defer { try? wal.close() }
        let file = try FileDescriptor.openForUpdate(target)
        for page in images.keys.sorted() where page <= databasePages {
            let bytes = try wal.read(count: pageSize, at: images[page]!)
            guard bytes.count == pageSize else { throw AbathurError(.io, walPath, "frame of page \(page) is cut short") }
            try file.write(bytes, at: Int64(page - 1) * Int64(pageSize))
        }
        try file.truncate(to: Int64(databasePages) * Int64(pageSize))
        try file.sync()
        try file.close()
    }
}
