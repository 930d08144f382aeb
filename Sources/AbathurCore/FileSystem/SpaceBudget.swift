/// The one rule every preflight applies before a run writes: the bytes it will write, plus a
/// margin of 1 MiB (journal, directory and metadata blocks), must fit in what the run may
/// use of the filesystem (`Filesystem`), or it stops with exit 6 naming the directory before
/// writing anything.
///
/// What the run may use depends on what it writes:
/// - `.keepTenPercent`: scratch copies and inflations (a backup being verified, a restore
///   candidate, a drill, a private copy of the live database). They go where the service may
///   write too, and a gzip bomb says more than any disk holds while its recorded length
///   (ISIZE) can lie, so they leave the filesystem at or below 90% used (df's Use%: used over
///   used plus available), and every inflation is held to the budget as it runs.
/// - `.allFree`: the copies that keep data safe (a backup, a safety copy) may use every byte
///   an unprivileged writer has: refusing them on a nearly full disk that holds them would
///   leave no copy at all.
public struct SpaceBudget: Sendable, Encodable {
    public enum Headroom: String, Sendable, Encodable {
        case keepTenPercent
        case allFree
    }

    /// The fullest a `.keepTenPercent` write may leave a filesystem, in percent.
    public static let maxUsedPercent: Int64 = 90
    /// Added to every write a preflight checks.
    public static let margin: Int64 = 1 << 20

    public var directory: String
    public var filesystem: Filesystem
    public var headroom: Headroom

    /// Available to unprivileged users (`f_bavail`).
    public var freeBytes: Int64 { filesystem.freeBytes }
    /// Used plus available: the size df's Use% is a fraction of.
    public var sizeBytes: Int64 { filesystem.usedBytes + filesystem.freeBytes }

    /// What may still be written: the free bytes, less, for `.keepTenPercent`, the 10% that
    /// must stay free.
    public var bytes: Int64 {
        switch headroom {
        case .allFree: return freeBytes
        case .keepTenPercent: return max(0, freeBytes - (sizeBytes * (100 - SpaceBudget.maxUsedPercent) + 99) / 100)
        }
    }

    public static func of(_ directory: String, headroom: Headroom = .keepTenPercent) throws -> SpaceBudget {
        SpaceBudget(directory: directory, filesystem: try Filesystem.of(directory), headroom: headroom)
    }

    /// What writing `bytes` needs here: the bytes and the margin.
    public static func needed(_ bytes: Int64) -> Int64 { bytes + margin }

    /// Why writing `bytes` (the margin is added here) does not fit, in the words of a
    /// diagnostic; nil when it does.
    public func shortage(_ bytes: Int64, for purpose: String) -> String? {
        let needed = SpaceBudget.needed(bytes)
        guard needed > self.bytes else { return nil }
        let cap = headroom == .keepTenPercent
            ? "; at most \(self.bytes) may be used here, to keep the filesystem at or below \(SpaceBudget.maxUsedPercent)% used" : ""
        return "\(freeBytes) bytes free, \(purpose) needs \(needed)\(cap)"
    }

    /// Exit 6, naming the directory, before anything is written.
    public func require(_ bytes: Int64, for purpose: String) throws {
        if let problem = shortage(bytes, for: purpose) { throw AbathurError(.noSpace, directory, problem) }
    }
}

/// The most bytes an inflation may write, checked as they arrive, before each write: the
/// database size a manifest records (more is a bad backup, exit 3), or else a space budget
/// (more is exit 6). The run stops there, and its temp file is removed by its owner.
public struct InflationLimit: Sendable {
    public enum Bound: Sendable {
        case manifest
        case budget(SpaceBudget)
    }

    public var bytes: Int64
    public var bound: Bound

    /// The size the manifest records: a stream that inflates past it is not that backup.
    public static func manifest(_ manifest: Manifest) -> InflationLimit {
        InflationLimit(bytes: manifest.database.bytes, bound: .manifest)
    }

    /// The budget of the directory written to, less the margin.
    public static func budget(_ budget: SpaceBudget) -> InflationLimit {
        InflationLimit(bytes: max(0, budget.bytes - SpaceBudget.margin), bound: .budget(budget))
    }

    /// Throws when `count` more bytes after `written` would pass the limit.
    public func check(written: Int64, adding count: Int, source: String) throws {
        guard written + Int64(count) > bytes else { return }
        switch bound {
        case .manifest:
            throw AbathurError(.damagedBackup, source,
                               "inflates past \(bytes) bytes, the database size its manifest records: not the backup the manifest describes")
        case .budget(let budget):
            throw AbathurError(.noSpace, source,
                               "inflates past \(bytes) bytes, all that \(budget.directory) may take while keeping its filesystem at or below \(SpaceBudget.maxUsedPercent)% used (\(budget.freeBytes) bytes were free); stopped and removed the partial copy")
        }
    }
}
