/// The files SQLite keeps for one database (sqlite.org/tempfiles.html): the main file and its
/// companions, each named by a suffix on the main file's path. The one place those names are
/// spelled.
public struct DatabaseFiles: Sendable, Hashable {
    /// One of the database's files.
    public enum File: String, Sendable, CaseIterable {
        case main
        /// The write-ahead log: committed transactions not yet checkpointed (FACTS.md 7).
        case wal
        /// The wal-index, shared memory SQLite rebuilds from the `-wal`.
        case shm
        /// The rollback journal: a hot one is rolled back when SQLite opens the database.
        case journal

        /// What SQLite appends to the database's path.
        public var suffix: String {
            switch self {
            case .main: return ""
            case .wal: return "-wal"
            case .shm: return "-shm"
            case .journal: return "-journal"
            }
        }

        /// The companions: every file but the main one.
        public static let companions: [File] = [.wal, .shm, .journal]
        /// The companions that hold transactions: committed ones in a `-wal`, ones to roll
        /// back in a `-journal`. The `-shm` holds none.
        public static let transactions: [File] = [.wal, .journal]
    }

    public let main: String

    public init(_ main: String) { self.main = main }

    public func path(_ file: File) -> String { main + file.suffix }

    public var wal: String { path(.wal) }
    public var shm: String { path(.shm) }
    public var journal: String { path(.journal) }
    /// `-wal`, `-shm`, `-journal`.
    public var companions: [String] { File.companions.map(path) }
    /// The main file, then its companions.
    public var all: [String] { File.allCases.map(path) }

    /// Which of `files` exist now (`lstat`: a symlink counts as there).
    public func existing(_ files: [File] = File.allCases) throws -> [File] {
        try files.filter { try FileStatus.of(path($0)) != nil }
    }

    /// The bytes of those of `files` that exist now.
    public func size(of files: [File] = File.allCases) throws -> Int64 {
        try files.reduce(0) { try $0 + (FileStatus.of(path($1))?.size ?? 0) }
    }
}
