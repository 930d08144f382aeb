/// What the database is expected to contain (SPEC.md: 9 tables, at least 33 indexes) and
/// which application it belongs to.
public struct SchemaExpectation: Sendable {
    public var tables: [String]
    public var minIndexes: Int
    public var indexes: [String]
    /// `expect_application_id`; nil: not checked.
    public var applicationId: Int64?

    public init(tables: [String], minIndexes: Int, indexes: [String], applicationId: Int64? = nil) {
        self.tables = tables
        self.minIndexes = minIndexes
        self.indexes = indexes
        self.applicationId = applicationId
    }

    public init(settings: Settings) throws {
        self.init(tables: try settings.value(.expectTables),
                  minIndexes: try settings.value(.expectMinIndexes),
                  indexes: try settings.value(.expectIndexes),
                  applicationId: try settings.value(.expectApplicationId))
    }

    /// Why a healthy SQLite file is another application's database (SPEC.md, "which input
    /// gets which code": exit 7), or nil when it is ours: a different application_id, or
    /// none of the expected tables. One judgement for every tool.
    public func foreignReason(tables present: [String], applicationId: Int64) -> String? {
        if let expected = self.applicationId, expected != applicationId {
            return "foreign database: application_id \(applicationId), expected \(expected) (expect_application_id)"
        }
        return foreignReason(tables: present)
    }

    /// The schema half of `foreignReason`: none of the expected tables is there.
    public func foreignReason(tables present: [String]) -> String? {
        guard !tables.isEmpty, !tables.contains(where: present.contains) else { return nil }
        let shown = present.isEmpty ? "no tables" : "tables \(present.prefix(5).joined(separator: ", "))\(present.count > 5 ? ", …" : "")"
        return "foreign database: none of the \(tables.count) expected tables (it has \(shown))"
    }
}
