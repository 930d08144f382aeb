/// A schema migration file for `abathur-restore --migrate` (issue 15): SQL applied in one
/// transaction, and the header comments that say how and what must hold afterwards:
///
///     -- foreign-keys: off            (default on; off for SQLite's 12-step table rebuild)
///     -- expect-tables: tasks, agents (tables that must exist afterwards)
///     -- expect-absent: sessions      (tables that must be gone)
///     -- expect-min-indexes: 20
///
/// The header is the comment lines before the first statement. Any other `-- key: value` there
/// is refused, so a misspelt expectation is never silently ignored.
public struct MigrationScript: Sendable {
    public struct Header: Sendable, Equatable, Encodable {
        public var foreignKeys = true
        public var expectTables: [String]?
        public var expectAbsent: [String]?
        public var expectMinIndexes: Int?
    }

    public var path: String
    public var text: String
    public var header: Header

    public static let directives = ["foreign-keys", "expect-tables", "expect-absent", "expect-min-indexes"]

    /// Reads a migration file (a regular file, UTF-8) and its header.
    public static func read(_ path: String) throws -> MigrationScript {
        let file = try FileDescriptor.openForReading(path)
        var bytes: [UInt8] = []
        try file.forEachChunk { bytes += $0 }
        try file.close()
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw AbathurError(.usage, path, "not UTF-8 text: a migration is an SQL file")
        }
        return MigrationScript(path: path, text: text, header: try parseHeader(text, path: path))
    }

    /// The header of `text`: its leading comment lines.
    public static func parseHeader(_ text: String, path: String) throws -> Header {
        var header = Header()
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingWhitespace()
            if line.isEmpty { continue }
            guard line.hasPrefix("--") else { break }
            let body = String(line.dropFirst(2)).trimmingWhitespace()
            guard let colon = body.firstIndex(of: ":") else { continue }
            let key = String(body[..<colon]).trimmingWhitespace().lowercased()
            let value = String(body[body.index(after: colon)...]).trimmingWhitespace()
            // A comment sentence with a colon is prose; a lower-case hyphenated key is a directive.
            guard !key.isEmpty, key.allSatisfy({ ("a"..."z").contains($0) || $0 == "-" }), key.contains("-") else { continue }
            let problem = { (what: String) in AbathurError(.usage, path, "line \(number + 1): \(key): \(what)") }
            switch key {
            case "foreign-keys":
                switch value.lowercased() {
                case "on": header.foreignKeys = true
                case "off": header.foreignKeys = false
                default: throw problem("expected on or off, not '\(value)'")
                }
            case "expect-tables": header.expectTables = names(value)
            case "expect-absent": header.expectAbsent = names(value)
            case "expect-min-indexes":
                guard let count = Int(value), count >= 0 else { throw problem("expected a whole number, not '\(value)'") }
                header.expectMinIndexes = count
            default:
                throw problem("unknown directive (known: \(directives.joined(separator: ", ")))")
            }
        }
        return header
    }

    static func names(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init).filter { !$0.isEmpty }
    }

    /// Statements the tool does itself, or that would break the one transaction: refused
    /// before that statement runs, naming its line; the transaction is rolled back.
    public static func refusal(of statement: ScriptStatement) -> String? {
        let words = statement.sql.uppercased().split(whereSeparator: { !$0.isLetter && $0 != "_" }).prefix(3).map(String.init)
        guard let first = words.first else { return nil }
        switch first {
        case "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE":
            return "transaction control: the tool runs the whole file in one transaction"
        case "VACUUM", "ATTACH", "DETACH":
            return "\(first) is not allowed in a migration"
        case "PRAGMA":
            // `PRAGMA name` or `PRAGMA schema.name`.
            let forbidden = ["FOREIGN_KEYS", "JOURNAL_MODE", "LOCKING_MODE", "WRITABLE_SCHEMA"]
            if let name = words.dropFirst().first(where: forbidden.contains) {
                return "PRAGMA \(name.lowercased()) is the tool's to set (use '-- foreign-keys: off' in the header)"
            }
            return nil
        default:
            return nil
        }
    }
}
