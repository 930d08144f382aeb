/// Everything one backup run needs to know, resolved from flags, environment and config.
public struct BackupRequest: Sendable {
    public var database: String
    public var backupDir: String
    public var kind: BackupName.Kind = .scheduled
    public var label: String = BackupName.scheduledPrefix
    public var compressionLevel: Int
    public var check: DatabaseCheck.Options
    public var busyTimeoutMs: Int
    public var lockWait: Double
    public var retention: RetentionPolicy
    /// Stream the verified `.gz` to stdout instead of adding it to the backup directory.
    public var toStdout = false
    /// How the online backup copies: all at once (FACTS.md 2), or so many pages a step so that
    /// progress can be shown. Either way it copies inside one read transaction.
    public var snapshotStep: SnapshotStep = .allAtOnce
    public var toolVersion: String

    public init(settings: Settings, toolVersion: String) throws {
        database = settings.string(.database)
        backupDir = settings.string(.backupDir)
        compressionLevel = try settings.value(.compressionLevel)
        busyTimeoutMs = try settings.value(.busyTimeoutMs)
        lockWait = try settings.value(.lockWait)
        check = DatabaseCheck.Options(quick: try settings.value(.quickCheck), expectation: try SchemaExpectation(settings: settings))
        check.busyTimeoutMs = busyTimeoutMs
        check.maxErrors = try settings.value(.maxErrors)
        retention = try RetentionPolicy(settings: settings)
        self.toolVersion = toolVersion
        guard !database.isEmpty else { throw AbathurError.usage("database path is empty") }
        guard !backupDir.isEmpty else { throw AbathurError.usage("backup directory path is empty") }
    }
}

/// How many pages each `sqlite3_backup_step` of the snapshot copies.
public enum SnapshotStep: Sendable, Equatable {
    /// One step, `sqlite3_backup_step(-1)`: the whole database at once.
    case allAtOnce
    /// So many pages a step (at least 1), with a progress event after each.
    case pages(Int32)

    /// `all`, or a number of pages from 1 to 2^31-1; nil for anything else.
    public init?(_ text: String) {
        if text == "all" {
            self = .allAtOnce
        } else if let pages = Int32(text), pages > 0 {
            self = .pages(pages)
        } else {
            return nil
        }
    }

    /// The argument of `sqlite3_backup_step`: -1 copies every remaining page.
    var pagesPerCall: Int32 {
        switch self {
        case .allAtOnce: return -1
        case .pages(let pages): return pages
        }
    }
}
