import FoundationEssentials

/// `NAME.db.gz.json`: what a backup is, written last; its presence marks the backup complete.
/// New fields may be added; none is ever removed or renamed.
public struct Manifest: Codable, Sendable, Equatable {
    public static let currentFormat = 1

    public struct FileFacts: Codable, Sendable, Equatable {
        public var sha256: String
        public var bytes: Int64
    }

    public struct DatabaseFacts: Codable, Sendable, Equatable {
        public var sha256: String
        public var bytes: Int64
        public var pageSize: Int
        public var pageCount: Int64
        public var freelistCount: Int64
        public var userVersion: Int64
        public var applicationId: Int64
    }

    public struct Schema: Codable, Sendable, Equatable {
        /// SHA-256 of the `sql` lines joined by newlines.
        public var sha256: String
        public var tables: [String]
        public var indexes: [String]
        /// `type name: sql` for every schema object, sorted by type then name.
        public var sql: [String]
        /// The root page of every table and index, and the values a row of each table stores:
        /// what a salvage needs when page 1 is gone. Absent in manifests written before they
        /// were recorded.
        public var rootPages: [String: Int64]?
        public var columnCounts: [String: Int]?
    }

    public struct Check: Codable, Sendable, Equatable {
        public var name: String
        public var ok: Bool
        public var detail: String
        public init(name: String, ok: Bool, detail: String) {
            self.name = name
            self.ok = ok
            self.detail = detail
        }
    }

    public var format: Int
    public var name: String
    public var kind: BackupName.Kind
    public var label: String
    public var created: String
    public var createdUnix: Int64
    public var source: String
    public var toolVersion: String
    public var sqliteVersion: String
    public var compressionLevel: Int
    public var gz: FileFacts
    public var database: DatabaseFacts
    public var schema: Schema
    public var rowCounts: [String: Int64]
    public var checks: [Check]
    /// True when every check passed and the written `.gz` was read back and matched.
    public var verified: Bool
    /// Milliseconds per step (snapshot, checks, compress, reverify, total).
    public var durationsMs: [String: Int64]
    /// Set when the live `-wal` held committed transactions that SQLite silently drops
    /// (FACTS.md 10): the snapshot lacks them, so the backup is kept but never verified.
    public var walLoss: WALLoss?

    public struct WALLoss: Codable, Sendable, Equatable {
        public var wal: String
        public var droppedCommits: Int
        public var droppedFrames: Int
        public var firstInvalidFrame: Int?
        public var reason: String
        public var detail: String
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    public func encoded() throws -> [UInt8] {
        try JSONFormat.encode(self)
    }

    public static func decode(_ bytes: [UInt8], path: String) throws -> Manifest {
        do {
            return try decoder.decode(Manifest.self, from: Data(bytes))
        } catch {
            throw AbathurError(.damagedBackup, path, "unreadable manifest: \(error)")
        }
    }

    public static func read(_ path: String) throws -> Manifest {
        try decode(TextFile.readBytes(path, limit: 16 << 20), path: path)
    }
}
