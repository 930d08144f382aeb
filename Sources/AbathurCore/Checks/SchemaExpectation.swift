/// What the database is expected to contain (SPEC.md: 9 tables, at least 33 indexes).
public struct SchemaExpectation: Sendable {
    public var tables: [String]
    public var minIndexes: Int
    public var indexes: [String]

    public init(tables: [String], minIndexes: Int, indexes: [String]) {
        self.tables = tables
        self.minIndexes = minIndexes
        self.indexes = indexes
    }

    public init(settings: Settings) throws {
        self.init(tables: settings.list(.expectTables),
                  minIndexes: try settings.integer(.expectMinIndexes, in: 0...100_000),
                  indexes: settings.list(.expectIndexes))
    }
}
