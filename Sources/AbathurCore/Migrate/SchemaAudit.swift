/// What a migration must leave clean, read through SQLite on the migrated copy:
/// `foreign_key_check` finds child rows without a parent; a table that declares a foreign key
/// to a table that no longer exists is found through `pragma_foreign_key_list`, because
/// `foreign_key_check` says nothing about it while every child key is NULL (issue 15).
public struct ForeignKeyAudit: Sendable, Encodable, Equatable {
    public struct Violation: Sendable, Encodable, Equatable {
        public var table: String
        public var rowid: Int64?
        public var parent: String
    }

    public struct Dangling: Sendable, Encodable, Equatable {
        public var table: String
        public var parent: String
    }

    public var violations: [Violation]
    public var dangling: [Dangling]

    public var isClean: Bool { violations.isEmpty && dangling.isEmpty }

    public static func run(_ connection: Connection, maxViolations: Int = 100) throws -> ForeignKeyAudit {
        do {
            return try read(connection, maxViolations: maxViolations)
        } catch {
            throw AbathurError(error.kind, connection.path, "cannot check foreign keys: \(error.message)")
        }
    }

    static func read(_ connection: Connection, maxViolations: Int) throws(SQLiteError) -> ForeignKeyAudit {
        let tables = try connection.rows("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
            .compactMap { $0.first ?? nil }
        let known = Set(tables.map { $0.lowercased() })
        var dangling: [Dangling] = []
        for table in tables {
            let parents = try connection.rows("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(\(SQL.literal(table)))")
                .compactMap { $0.first ?? nil }
            for parent in parents where !known.contains(parent.lowercased()) {
                dangling.append(Dangling(table: table, parent: parent))
            }
        }
        var violations: [Violation] = []
        let statement = try connection.prepare("PRAGMA foreign_key_check")
        while violations.count < maxViolations {
            guard try statement.step() else { break }
            violations.append(Violation(table: statement.text(at: 0) ?? "", rowid: statement.text(at: 1).flatMap { Int64($0) },
                                        parent: statement.text(at: 2) ?? ""))
        }
        return ForeignKeyAudit(violations: violations, dangling: dangling)
    }

    /// One line for a diagnostic.
    public var summary: String {
        var parts: [String] = []
        if !dangling.isEmpty {
            parts.append(dangling.map { "\($0.table) declares a foreign key to \($0.parent), which does not exist" }.joined(separator: "; "))
        }
        if !violations.isEmpty {
            let byTable = Dictionary(grouping: violations, by: { "\($0.table) -> \($0.parent)" }).map { "\($0.value.count) in \($0.key)" }.sorted()
            parts.append("foreign_key_check: \(violations.count) row(s) without a parent (\(byTable.joined(separator: ", ")))")
        }
        return parts.isEmpty ? "foreign keys clean" : parts.joined(separator: "; ")
    }
}

/// The schema and the rows of a database, for the before/after diff of a migration.
public struct SchemaSnapshot: Sendable, Encodable, Equatable {
    public var tables: [String: Int64]
    public var indexes: [String]
    public var triggers: [String]
    public var views: [String]

    public static func take(_ connection: Connection) throws -> SchemaSnapshot {
        do {
            return try read(connection)
        } catch {
            throw AbathurError(error.kind, connection.path, "cannot read the schema: \(error.message)")
        }
    }

    static func read(_ connection: Connection) throws(SQLiteError) -> SchemaSnapshot {
        // Indexes as the backup checks and expect_min_indexes count them: SQLite's automatic
        // ones (a UNIQUE or a TEXT PRIMARY KEY) included. Its internal tables are not ours.
        let objects = try connection.rows("SELECT type, name FROM sqlite_schema ORDER BY name")
        var snapshot = SchemaSnapshot(tables: [:], indexes: [], triggers: [], views: [])
        for row in objects {
            guard row.count == 2, let type = row[0], let name = row[1] else { continue }
            switch type {
            case "table" where name.lowercased().hasPrefix("sqlite_"): continue
            case "table": snapshot.tables[name] = try connection.integer("SELECT count(*) FROM \(SQL.quoted(name))")
            case "index": snapshot.indexes.append(name)
            case "trigger": snapshot.triggers.append(name)
            case "view": snapshot.views.append(name)
            default: continue
            }
        }
        return snapshot
    }
}

/// What a migration changed: objects added and removed, and the rows of each table that
/// stayed, before and after.
public struct SchemaDiff: Sendable, Encodable, Equatable {
    public struct Rows: Sendable, Encodable, Equatable {
        public var before: Int64
        public var after: Int64
    }

    public var tablesAdded: [String]
    public var tablesRemoved: [String]
    public var indexesAdded: [String]
    public var indexesRemoved: [String]
    public var triggersAdded: [String]
    public var triggersRemoved: [String]
    /// Tables in both whose row count changed.
    public var rowsChanged: [String: Rows]

    public init(before: SchemaSnapshot, after: SchemaSnapshot) {
        func diff(_ a: [String], _ b: [String]) -> ([String], [String]) {
            (Set(b).subtracting(a).sorted(), Set(a).subtracting(b).sorted())
        }
        (tablesAdded, tablesRemoved) = diff(Array(before.tables.keys), Array(after.tables.keys))
        (indexesAdded, indexesRemoved) = diff(before.indexes, after.indexes)
        (triggersAdded, triggersRemoved) = diff(before.triggers, after.triggers)
        var changed: [String: Rows] = [:]
        for (table, rows) in before.tables {
            if let now = after.tables[table], now != rows { changed[table] = Rows(before: rows, after: now) }
        }
        rowsChanged = changed
    }

    /// `tables -2 (sessions, memory_entries), indexes -7, rows: tasks 500 -> 480`
    public var summary: String {
        var parts: [String] = []
        func list(_ sign: String, _ what: String, _ names: [String]) {
            if !names.isEmpty { parts.append("\(what) \(sign)\(names.count) (\(names.joined(separator: ", ")))") }
        }
        list("+", "tables", tablesAdded); list("-", "tables", tablesRemoved)
        list("+", "indexes", indexesAdded); list("-", "indexes", indexesRemoved)
        list("+", "triggers", triggersAdded); list("-", "triggers", triggersRemoved)
        if !rowsChanged.isEmpty {
            parts.append("rows: " + rowsChanged.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.before) -> \($0.value.after)" }.joined(separator: ", "))
        }
        return parts.isEmpty ? "no schema or row-count change" : parts.joined(separator: "; ")
    }
}
