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
    public var toolVersion: String

    public init(settings: Settings, toolVersion: String) throws {
        database = settings.string(.database)
        backupDir = settings.string(.backupDir)
        compressionLevel = try settings.integer(.compressionLevel, in: 1...9)
        busyTimeoutMs = try settings.integer(.busyTimeoutMs, in: 0...3_600_000)
        lockWait = try settings.seconds(.lockWait)
        check = DatabaseCheck.Options(quick: try settings.boolean(.quickCheck), expectation: try SchemaExpectation(settings: settings))
        check.busyTimeoutMs = busyTimeoutMs
        retention = try RetentionPolicy(settings: settings)
        self.toolVersion = toolVersion
        guard !database.isEmpty else { throw AbathurError.usage("database path is empty") }
        guard !backupDir.isEmpty else { throw AbathurError.usage("backup directory path is empty") }
    }
}
