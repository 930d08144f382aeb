/// Which backups stay (SPEC.md, "Defaults"): scheduled backups for `retention_days`, never
/// fewer than the `keep_min_verified` newest verified ones, manual backups always. Only
/// regular files with our names and a valid manifest are ever removed (SPEC.md, "Safety
/// rules"); everything else in the directory is left alone.
public struct RetentionPolicy: Sendable {
    public var days: Int
    public var keepMinVerified: Int

    public init(days: Int, keepMinVerified: Int) {
        self.days = days
        self.keepMinVerified = keepMinVerified
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

    /// Decides for every backup in `catalog`. For the floor a backup counts as verified only
    /// when its manifest says so and its `.gz` still hashes to the manifest's SHA-256 (read
    /// now, newest first, until the floor is met): a corrupt backup never holds the floor.
    public func plan(_ catalog: Catalog, now: Double) throws -> [Decision] {
        let cutoff = Int64(now) - Int64(days) * 86400
        var floorLeft = keepMinVerified
        var decisions: [Decision] = []
        for entry in catalog.entries {
            let name = entry.fileName
            guard entry.name.kind == .scheduled else {
                decisions.append(Decision(name: name, keep: true, rule: "manual backups are never pruned automatically"))
                continue
            }
            guard let manifest = entry.manifest else {
                if entry.lacksManifest {
                    decisions.append(Decision(name: name, keep: true, rule: "incomplete (no manifest: an interrupted publish): never pruned, never counted toward the floor"))
                    continue
                }
                decisions.append(Decision(name: name, keep: true, rule: "no valid manifest: not pruned" + (entry.manifestProblem.map { " (\($0))" } ?? "")))
                continue
            }
            if let status = entry.status, !status.isRegular {
                decisions.append(Decision(name: name, keep: true, rule: "not a regular file: never touched"))
                continue
            }
            if floorLeft > 0, entry.isComplete, try GzipFile.sha256(of: entry.path).hex == manifest.gz.sha256 {
                floorLeft -= 1
                decisions.append(Decision(name: name, keep: true, rule: "one of the \(keepMinVerified) newest verified backups"))
                continue
            }
            if manifest.createdUnix >= cutoff {
                decisions.append(Decision(name: name, keep: true, rule: "within \(days) days"))
            } else {
                let what = entry.status == nil ? "manifest without its backup" : "older than \(days) days"
                decisions.append(Decision(name: name, keep: false, rule: what))
            }
        }
        return decisions
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
