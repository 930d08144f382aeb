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
