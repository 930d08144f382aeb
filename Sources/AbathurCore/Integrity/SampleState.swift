import FoundationEssentials

/// When each backup was last checked by `abathur-integrity --sample`, so that a daily timer
/// checking a few percent covers every backup over time. Kept in the backup directory.
public struct SampleState: Codable, Sendable {
    public static let fileName = ".abathur-integrity-state.json"

    /// Backup name → seconds since the epoch of its last check.
    public var checked: [String: Int64] = [:]

    public init() {}

    public static func load(_ directory: String) -> SampleState {
        let path = Paths.join(directory, fileName)
        guard let bytes = try? TextFile.readBytes(path, limit: 4 << 20),
              let state = try? JSONDecoder().decode(SampleState.self, from: Data(bytes)) else { return SampleState() }
        return state
    }

    /// The `percent` of `names` checked longest ago (never-checked first, newest first among
    /// equals); at least one.
    public func pick(_ names: [String], percent: Double) -> [String] {
        let count = min(names.count, max(1, Int((Double(names.count) * percent / 100).rounded(.up))))
        let order = names.enumerated().sorted { a, b in
            let ta = checked[a.element] ?? Int64.min, tb = checked[b.element] ?? Int64.min
            return ta != tb ? ta < tb : a.offset < b.offset
        }
        return order.prefix(count).map(\.element)
    }

    /// Records `names` as checked at `time`, forgets backups that no longer exist, and
    /// writes the state atomically. Call under the backup directory's lock.
    public mutating func record(_ names: [String], at time: Int64, existing: [String], in directory: String) throws {
        for name in names { checked[name] = time }
        checked = checked.filter { existing.contains($0.key) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try SafeFiles.writeAtomically(Array(try encoder.encode(self)) + [10], to: Paths.join(directory, SampleState.fileName))
    }
}
