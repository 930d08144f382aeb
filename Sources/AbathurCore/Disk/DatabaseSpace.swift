/// How much room a database takes and could give back, read from its header without opening
/// SQLite (FACTS.md 11, 14): the sizes of its files, the page size and count, and the
/// freelist (what a VACUUM reclaims). In WAL mode the main file's page 1 may be stale, so the
/// newest page 1 of the WAL's committed prefix speaks for the database when there is one.
public struct DatabaseSpace: Sendable, Encodable, Equatable {
    public var database: String
    /// Bytes of the main file, the `-wal` and the `-shm` (0 when absent).
    public var mainBytes: Int64
    public var walBytes: Int64
    public var shmBytes: Int64
    public var pageSize: Int
    /// The database's size in pages as SQLite sees it (the last commit's size in the WAL).
    public var pageCount: Int64
    public var freelistPages: Int64
    public var autoVacuum: DatabaseHeader.AutoVacuum
    /// `main file` or `wal frame N`: where page 1 was read.
    public var headerSource: String

    /// The database as SQLite sees it: pages times the page size.
    public var logicalBytes: Int64 { pageCount * Int64(pageSize) }
    /// What a VACUUM gives back, at least.
    public var freelistBytes: Int64 { freelistPages * Int64(pageSize) }

    /// Reads the header of `database` and the committed prefix of its `-wal`. Throws, naming
    /// the file, when the database is missing (exit 8) or not an SQLite file (exit 4).
    public static func read(_ database: String) throws -> DatabaseSpace {
        let files = DatabaseFiles(database)
        let (mainHeader, mainBytes) = try DatabaseHeader.read(database)
        var header = mainHeader
        var source = "main file"
        var walPages: UInt32?
        let walStatus = try FileStatus.of(files.wal)
        if let walStatus, walStatus.isRegular, walStatus.size > 0, let newest = try newestCommittedPageOne(files.wal) {
            walPages = newest.databasePages
            if let parsed = try? DatabaseHeader(bytes: Array(newest.page.prefix(DatabaseHeader.size))) {
                header = parsed
                source = "wal frame \(newest.frame)"
            }
        }
        let pages = walPages.map(Int64.init)
            ?? (header.pageCountIsValid ? Int64(header.pageCount) : mainBytes / Int64(header.pageSize))
        return DatabaseSpace(database: database, mainBytes: mainBytes, walBytes: walStatus?.size ?? 0,
                             shmBytes: try FileStatus.of(files.shm)?.size ?? 0, pageSize: header.pageSize, pageCount: pages,
                             freelistPages: Int64(header.freelistCount), autoVacuum: header.autoVacuum, headerSource: source)
    }

    /// The newest page 1 in the WAL's committed prefix, the frame it is in, and the database's
    /// size in pages at the last commit; nil when the WAL commits nothing SQLite would read.
    static func newestCommittedPageOne(_ wal: String) throws -> (page: [UInt8], frame: Int, databasePages: UInt32)? {
        let reader = try WALReader(wal)
        defer { try? reader.close() }
        var pending: (page: [UInt8], frame: Int)?
        var committed: (page: [UInt8], frame: Int)?
        var databasePages: UInt32?
        while let frame = try reader.next(), frame.standing == .valid {
            if frame.pageNumber == 1 { pending = (reader.page(), frame.index) }
            if frame.isCommit {
                if let pending { committed = pending }
                pending = nil
                databasePages = frame.commitSize
            }
        }
        guard let databasePages else { return nil }
        // A commit that did not write page 1 leaves the main file's page 1 in force.
        guard let committed else { return (page: [], frame: 0, databasePages: databasePages) }
        return (committed.page, committed.frame, databasePages)
    }
}
