/// Everything one `abathur-restore` run needs to know, resolved from flags, environment and
/// config.
public struct RestoreRequest: Sendable {
    /// Which backup, file or stream to restore.
    public enum Source: Sendable, Equatable {
        /// The newest verified backup in the backup directory (the default).
        case newest
        /// A backup in the backup directory, by name (`.db.gz` optional).
        case named(String)
        /// The newest verified backup created strictly before this time (seconds, UTC).
        case before(Int64)
        /// A `.db.gz` or `.db` file anywhere.
        case path(String)
        /// A `.db.gz` or `.db` stream on stdin.
        case standardInput
    }

    public var source: Source = .newest
    /// The database to replace: the live one, or `--to PATH`.
    public var database: String
    /// `--to PATH`: never touches units and runs no health check.
    public var isAlternateTarget = false
    public var backupDir: String
    public var lockWait: Double
    public var busyTimeoutMs: Int
    public var check: DatabaseCheck.Options
    public var expectUserVersion: Int64?
    /// systemd units stopped around the swap; empty with `--no-services` or `--to`.
    public var services: [String]
    public var health: HealthCheck?
    public var incidentDir: String
    public var tempDir: String
    /// A drill warns when a live table has lost more than this fraction of the backup's rows.
    public var shrinkWarning: Double
    /// How long safety copies, aside directories and incident records stay.
    public var safetyRetention: SafetyRetention
    public var initCommand: [String]
    /// Accept a symlinked or non-regular source, and swap even when a process holds the database.
    public var force = false
    public var toolVersion: String

    public init(settings: Settings, toolVersion: String) throws {
        database = settings.string(.database)
        backupDir = settings.string(.backupDir)
        lockWait = try settings.value(.lockWait)
        busyTimeoutMs = try settings.value(.busyTimeoutMs)
        check = DatabaseCheck.Options(quick: try settings.value(.quickCheck), expectation: try SchemaExpectation(settings: settings))
        check.busyTimeoutMs = busyTimeoutMs
        check.maxErrors = try settings.value(.maxErrors)
        expectUserVersion = try settings.value(.expectUserVersion)
        services = try settings.value(.services)
        health = try HealthCheck(settings: settings)
        let incidents = settings.string(.incidentDir)
        incidentDir = incidents.isEmpty ? Paths.join(backupDir, Catalog.incidentDirName) : incidents
        tempDir = settings.string(.tempDir)
        shrinkWarning = try settings.value(.shrinkWarning)
        safetyRetention = try SafetyRetention(settings: settings)
        initCommand = try settings.value(.initCommand)
        self.toolVersion = toolVersion
        guard !database.isEmpty else { throw AbathurError.usage("database path is empty") }
        guard !backupDir.isEmpty else { throw AbathurError.usage("backup directory path is empty") }
    }

    /// Where safety copies go: `BACKUP_DIR/safety/`; when the backup directory is read-only
    /// (a DR share), `.abathur-safety/` beside the database, the directory a restore must be
    /// able to write anyway: persistent, on the disk the database lives on (so the space
    /// preflight counts it there), next to the `.abathur-aside-*` directories of the swap.
    public var safetyRoot: String { safetyRoot(backupDirReadOnly: FileLock.readOnlyReason(backupDir) != nil) }

    public func safetyRoot(backupDirReadOnly: Bool) -> String {
        backupDirReadOnly ? Paths.join(Paths.directory(of: database), SafetyCopy.besideDatabaseDirName)
            : Paths.join(backupDir, Catalog.safetyDirName)
    }
}
