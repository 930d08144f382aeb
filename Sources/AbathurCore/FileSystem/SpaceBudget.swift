#if canImport(Glibc)
import Glibc
#endif

/// The bytes a run may write into a directory's filesystem: what an unprivileged user may
/// still write, less what keeps the filesystem at or below 90% used (df's Use%: used over
/// used plus available). Inflating a backup writes as much as the stream says; a gzip bomb
/// says more than any disk holds, and its recorded length (ISIZE) can lie, so every inflation
/// is held to a budget while the service still runs on the same disk.
public struct SpaceBudget: Sendable, Encodable {
    /// The fullest an inflation may leave a filesystem, in percent.
    public static let maxUsedPercent: Int64 = 90

    public var directory: String
    /// Available to unprivileged users (`f_bavail`).
    public var freeBytes: Int64
    /// Used plus available: the size df's Use% is a fraction of.
    public var sizeBytes: Int64

    /// What may still be written: free bytes less the 10% that must stay free.
    public var bytes: Int64 {
        max(0, freeBytes - (sizeBytes * (100 - SpaceBudget.maxUsedPercent) + 99) / 100)
    }

    public static func of(_ directory: String) throws -> SpaceBudget {
        var info = statvfs()
        do {
            try Syscall.retrying { statvfs(directory, &info) }
        } catch {
            throw AbathurError(error.kind, directory, "cannot read free space: \(error)")
        }
        let unit = Int64(info.f_frsize)
        let free = Int64(info.f_bavail) * unit
        let used = (Int64(info.f_blocks) - Int64(info.f_bfree)) * unit
        return SpaceBudget(directory: directory, freeBytes: free, sizeBytes: used + free)
    }

    /// Why `needed` bytes do not fit, in the words of a diagnostic; nil when they do.
    public func shortage(_ needed: Int64, for purpose: String) -> String? {
        guard needed > bytes else { return nil }
        return "\(freeBytes) bytes free, \(purpose) needs \(needed); at most \(bytes) may be used here, to keep the filesystem at or below \(SpaceBudget.maxUsedPercent)% used"
    }

    /// Exit 6, naming the directory, before anything is written.
    public func require(_ needed: Int64, for purpose: String) throws {
        if let problem = shortage(needed, for: purpose) { throw AbathurError(.noSpace, directory, problem) }
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

    /// The budget of the directory written to, less what the run still needs there besides.
    public static func budget(_ budget: SpaceBudget, reserving other: Int64 = 0) -> InflationLimit {
        InflationLimit(bytes: max(0, budget.bytes - other), bound: .budget(budget))
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
