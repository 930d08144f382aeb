/// Which backups stay (SPEC.md, "Defaults"): scheduled backups for `retention_days`, never
/// fewer than the `keep_min_verified` newest verified ones, manual backups always. Only
/// regular files with our names and a valid manifest are ever removed (SPEC.md, "Safety
/// rules"); everything else in the directory is left alone.
public struct RetentionPolicy: Sendable {
    public var days: Int
    public var keepMinVerified: Int
    /// The floor only (`abathur-diskcheck --fix`, an emergency): `retention_days` is ignored,
    /// and every backup beyond the `keep_min_verified` newest verified ones may go.
    public var floorOnly = false
    /// Manual backups may go too, and then count toward the floor (`--include-manual`).
    public var includeManual = false

    public init(days: Int, keepMinVerified: Int) {
        self.days = days
        self.keepMinVerified = keepMinVerified
    }

    /// The floor-only policy of a full disk.
    public static func emergency(keepMinVerified: Int, includeManual: Bool) -> RetentionPolicy {
        var policy = RetentionPolicy(days: 0, keepMinVerified: keepMinVerified)
        policy.floorOnly = true
        policy.includeManual = includeManual
        return policy
    }

    public init(settings: Settings) throws {
        days = try settings.value(.retentionDays)
        keepMinVerified = try settings.value(.keepMinVerified)
    }

    public struct Decision: Sendable {
        public var name: String
        public var keep: Bool
        public var rule: String
    }

    /// The shared rule with this policy's numbers: the `keep_min_verified` newest verified
    /// backups, then every backup younger than `retention_days`.
    var rule: DatedRetention {
        DatedRetention(keepNewest: keepMinVerified, maxAgeSeconds: floorOnly ? nil : Int64(days) * 86400,
                       newestRule: "one of the \(keepMinVerified) newest verified backups", age: floorOnly ? "" : "\(days) days")
    }

    /// Decides for every backup in `catalog`. For the floor a backup counts as verified only
    /// when its manifest says so and its `.gz` still hashes to the manifest's SHA-256 (read
    /// now, newest first, until the floor is met): a corrupt backup never holds the floor.
    public func plan(_ catalog: Catalog, now: Double) throws -> [Decision] {
        try rule.plan(catalog.entries, now: now, exemption: { entry in
            guard entry.name.kind == .scheduled || includeManual else { return "manual backups are never pruned automatically" }
            guard entry.manifest != nil else {
                if entry.lacksManifest { return "incomplete (no manifest: an interrupted publish): never pruned, never counted toward the floor" }
                return "no valid manifest: not pruned" + (entry.manifestProblem.map { " (\($0))" } ?? "")
            }
            if let status = entry.status, !status.isRegular { return "not a regular file: never touched" }
            return nil
        }, created: { $0.manifest!.createdUnix }, countsTowardFloor: { entry in
            try entry.isComplete && GzipFile.sha256(of: entry.path).hex == entry.manifest!.gz.sha256
        }, removal: { entry in
            entry.status == nil ? "manifest without its backup" : nil
        }).map { Decision(name: $0.item.fileName, keep: $0.keep, rule: $0.rule) }
    }

    /// Removes what `plan` marked, each `.gz` before its manifest, and returns the names removed.
    public func apply(_ decisions: [Decision], in directory: String) throws -> [String] {
        var removed: [String] = []
        for decision in decisions where !decision.keep {
            guard let name = BackupName(fileName: decision.name) else { continue }
            let path = Paths.join(directory, name.fileName)
            if let status = try FileStatus.of(path) {
                guard status.isRegular else { continue }
                try SafeFiles.remove(path)
            }
            try SafeFiles.remove(Paths.join(directory, name.manifestName))
            removed.append(decision.name)
        }
        if !removed.isEmpty { try SafeFiles.syncDirectory(directory) }
        return removed
    }
}

/// The rule every retention shares, over dated items: the `keepNewest` newest items that may
/// count toward that floor stay, then every item younger than `maxAgeSeconds`; the rest go.
/// Backups (`RetentionPolicy`) and what restores leave behind (`SafetyRetention`) are kept by
/// it; what is exempt, and what counts toward the floor, is the caller's to say.
public struct DatedRetention: Sendable {
    public var keepNewest: Int
    /// Nil: no age keeps an item; only the floor does.
    public var maxAgeSeconds: Int64?
    /// Why an item of the floor stays (`one of the 2 newest verified backups`).
    public var newestRule: String
    /// The age limit in words (`30 days`).
    public var age: String

    public init(keepNewest: Int, maxAgeSeconds: Int64?, newestRule: String, age: String) {
        self.keepNewest = keepNewest
        self.maxAgeSeconds = maxAgeSeconds
        self.newestRule = newestRule
        self.age = age
    }

    public struct Decision<Item> {
        public var item: Item
        public var keep: Bool
        public var rule: String
    }

    /// Decides for `items`, which come newest first. `exemption` says why an item is never
    /// removed (nil: the rule decides); `removal` may say why one goes in other words than
    /// its age.
    public func plan<Item>(_ items: [Item], now: Double, exemption: (Item) -> String?, created: (Item) -> Int64,
                           countsTowardFloor: (Item) throws -> Bool, removal: (Item) -> String?) rethrows -> [Decision<Item>] {
        let cutoff = maxAgeSeconds.map { Int64(now) - $0 }
        var floorLeft = keepNewest
        return try items.map { item in
            if let why = exemption(item) { return Decision(item: item, keep: true, rule: why) }
            if floorLeft > 0, try countsTowardFloor(item) {
                floorLeft -= 1
                return Decision(item: item, keep: true, rule: newestRule)
            }
            if let cutoff, created(item) >= cutoff { return Decision(item: item, keep: true, rule: "within \(age)") }
            return Decision(item: item, keep: false, rule: removal(item) ?? (cutoff == nil ? "beyond the floor" : "older than \(age)"))
        }
    }
}
