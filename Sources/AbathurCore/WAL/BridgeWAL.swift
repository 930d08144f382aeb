/// A `-wal` of our own, in SQLite's format (FACTS.md, "WAL file"), that turns one database
/// file into another: one transaction holding every page of `new` that differs from `old`,
/// committed with `new`'s size. SQLite replays it onto `old` to give `new`, and onto `new` to
/// give `new` again.
///
/// That is what lets walfix's swap retire a damaged `-wal` without a moment where the
/// database's name and its `-wal` disagree (`DatabaseSwap.Retirement.bridge`): the bridge
/// takes the `-wal`'s name first (the old main file plus the bridge reads as the candidate),
/// then the candidate takes the database's name (the candidate plus the bridge reads as the
/// candidate), then the bridge goes.
public enum BridgeWAL {
    /// Writes the bridge from `old` to `new` (database files with the same page size) as the
    /// new file `target`, fsynced. Returns the number of frames.
    @discardableResult
    public static func write(from old: String, to new: String, as target: String) throws -> Int {
        let (header, newSize) = try DatabaseHeader.read(new, followSymlinks: true)
        let pageSize = header.pageSize
        let newPages = UInt32(newSize / Int64(pageSize))
        guard newPages > 0, newSize % Int64(pageSize) == 0 else {
            throw AbathurError(.internal, new, "size \(newSize) is not a whole number of \(pageSize)-byte pages")
        }
        let oldFile = try FileDescriptor.openForReading(old, followSymlinks: true)
        defer { try? oldFile.close() }
        let newFile = try FileDescriptor.openForReading(new)
        defer { try? newFile.close() }
        let output = try FileDescriptor.createExclusive(target)

        let salt1 = UInt32.random(in: 0...UInt32.max), salt2 = UInt32.random(in: 0...UInt32.max)
        var bytes = [UInt8]()
        for value in [WALHeader.magicLittleEndian, WALHeader.formatVersion, UInt32(pageSize), 0, salt1, salt2] { bytes += value.bigEndianBytes }
        var checksum = bytes.withUnsafeBytes { WALChecksum.zero.adding($0, littleEndian: true) }
        bytes += checksum.s0.bigEndianBytes + checksum.s1.bigEndianBytes
        try output.write(bytes)

        // Page 1 last: its frame carries the commit, so the changed pages and the new size
        // arrive as one transaction.
        var frames = 0
        func frame(_ page: UInt32, _ image: [UInt8], commit: UInt32) throws {
            var head = page.bigEndianBytes + commit.bigEndianBytes
            checksum = head.withUnsafeBytes { checksum.adding($0, littleEndian: true) }
            checksum = image.withUnsafeBytes { checksum.adding($0, littleEndian: true) }
            head += salt1.bigEndianBytes + salt2.bigEndianBytes + checksum.s0.bigEndianBytes + checksum.s1.bigEndianBytes
            try output.write(head + image)
            frames += 1
        }
        for page in UInt32(2)...max(2, newPages) where page <= newPages {
            let offset = Int64(page - 1) * Int64(pageSize)
            let image = try newFile.read(count: pageSize, at: offset)
            if try oldFile.read(count: pageSize, at: offset) != image { try frame(page, image, commit: 0) }
        }
        try frame(1, try newFile.read(count: pageSize, at: 0), commit: newPages)
        try output.sync()
        try output.close()
        return frames
    }
}
