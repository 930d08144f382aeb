#if canImport(Glibc)
import Glibc
#endif

/// Where the pages of a database come from (fileformat2.html, "Pages"): a file, bytes in
/// memory, or a file with a WAL's committed frames laid over it. Page numbers start at 1.
///
/// A source never fails: a page it cannot give (past the end, unreadable) is nil, and a page
/// the file holds only part of comes back zero-filled after the part that is there, so the
/// cells that survive a truncation are still read.
public protocol PageSource: AnyObject {
    var pageSize: Int { get }
    /// Pages the source can give, counted from 1.
    var pageCount: UInt32 { get }
    func page(_ number: UInt32) -> [UInt8]?
}

/// Pages held in memory: tests, and the fuzzer.
public final class MemoryPageSource: PageSource {
    public let pageSize: Int
    public let bytes: [UInt8]

    public init(bytes: [UInt8], pageSize: Int) {
        self.bytes = bytes
        self.pageSize = pageSize
    }

    public var pageCount: UInt32 { UInt32(clamping: (bytes.count + pageSize - 1) / pageSize) }

    public func page(_ number: UInt32) -> [UInt8]? {
        guard number >= 1, number <= pageCount else { return nil }
        let start = Int(number - 1) * pageSize
        var page = Array(bytes[start..<min(bytes.count, start + pageSize)])
        if page.count < pageSize { page += [UInt8](repeating: 0, count: pageSize - page.count) }
        return page
    }
}

/// Pages read from a file with `pread`, one at a time: memory stays at one page whatever
/// the file's size. Read errors give nil for that page, never a crash.
public final class FilePageSource: PageSource {
    public let path: String
    public let pageSize: Int
    public let fileSize: Int64
    let file: FileDescriptor

    public init(path: String, pageSize: Int) throws {
        self.path = path
        self.pageSize = pageSize
        file = try FileDescriptor.openForReading(path, followSymlinks: true)
        fileSize = try file.status().size
    }

    deinit { try? file.close() }

    public var pageCount: UInt32 { UInt32(clamping: (fileSize + Int64(pageSize) - 1) / Int64(pageSize)) }

    public func page(_ number: UInt32) -> [UInt8]? {
        guard number >= 1, number <= pageCount else { return nil }
        guard var page = try? file.read(count: pageSize, at: Int64(number - 1) * Int64(pageSize)) else { return nil }
        if page.count < pageSize { page += [UInt8](repeating: 0, count: pageSize - page.count) }
        return page
    }

    /// The first `count` bytes of the file (a header), however short the file is.
    public static func prefix(of path: String, count: Int) throws -> [UInt8] {
        let file = try FileDescriptor.openForReading(path, followSymlinks: true)
        defer { try? file.close() }
        return try file.read(count: count, at: 0)
    }
}

/// A WAL's committed frames laid over a base source, as SQLite reads them: for each page the
/// newest frame in the committed prefix, and the database size from the last commit frame.
public final class WALPageSource: PageSource {
    public let base: PageSource
    public let walPath: String
    /// Page number to the byte offset of its newest committed frame's page data.
    public let frames: [UInt32: Int64]
    /// Page number to the offset of its first frame in the committed prefix: the page as
    /// the WAL's first commit to touch it left it.
    public let firstFrames: [UInt32: Int64]
    /// The size in pages the last commit records.
    public let committedPageCount: UInt32
    let file: FileDescriptor

    /// Nil when the WAL has no committed frame SQLite would read, or its page size is not
    /// the base's.
    public init?(base: PageSource, walPath: String) {
        guard let reader = try? WALReader(walPath), let header = reader.header, reader.headerProblem == nil,
              header.pageSize == base.pageSize else { return nil }
        var pending: [UInt32: Int64] = [:], pendingFirst: [UInt32: Int64] = [:]
        var committed: [UInt32: Int64] = [:], first: [UInt32: Int64] = [:]
        var size: UInt32 = 0
        while let frame = try? reader.next(), frame.standing == .valid {
            let offset = frame.offset + Int64(WALFrame.headerSize)
            pending[frame.pageNumber] = offset
            if pendingFirst[frame.pageNumber] == nil { pendingFirst[frame.pageNumber] = offset }
            if frame.isCommit {
                committed.merge(pending) { _, new in new }
                first.merge(pendingFirst) { old, _ in old }
                pendingFirst = [:]
                pending = [:]
                size = frame.commitSize
            }
        }
        try? reader.close()
        guard size > 0, let file = try? FileDescriptor.openForReading(walPath, followSymlinks: true) else { return nil }
        self.base = base
        self.walPath = walPath
        self.frames = committed
        self.firstFrames = first
        self.committedPageCount = size
        self.file = file
    }

    deinit { try? file.close() }

    public var pageSize: Int { base.pageSize }
    public var pageCount: UInt32 { committedPageCount }

    /// The page data of the frame at `offset`.
    public func frame(at offset: Int64) -> [UInt8]? {
        guard let page = try? file.read(count: pageSize, at: offset), page.count == pageSize else { return nil }
        return page
    }

    public func page(_ number: UInt32) -> [UInt8]? {
        guard number >= 1, number <= pageCount else { return nil }
        if let offset = frames[number] {
            guard let page = try? file.read(count: pageSize, at: offset), page.count == pageSize else { return nil }
            return page
        }
        return base.page(number)
    }
}
