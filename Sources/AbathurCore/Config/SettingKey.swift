/// One setting: its config key, its environment variable and its default. Every tool reads
/// the same table, so a key means the same thing wherever it appears.
public struct SettingKey: Sendable, Hashable {
    public let name: String
    public let environment: String
    public let defaultValue: String
    public let help: String

    init(_ name: String, env: String? = nil, default defaultValue: String, _ help: String) {
        self.name = name
        self.environment = env ?? "ABATHUR_" + name.uppercased()
        self.defaultValue = defaultValue
        self.help = help
    }

    public static func == (a: SettingKey, b: SettingKey) -> Bool { a.name == b.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    public static let database = SettingKey("database", env: "ABATHUR_DB", default: "/var/lib/abathur/abathur.db", "the live database")
    public static let backupDir = SettingKey("backup_dir", default: "/var/backups/abathur", "where backups live")
    public static let lockWait = SettingKey("lock_wait", default: "0", "how long to wait for the lock, in seconds or as 90s/15m (0: exit 5 at once)")
    public static let busyTimeoutMs = SettingKey("busy_timeout_ms", default: "5000", "SQLite busy timeout in milliseconds")
    public static let prometheusDir = SettingKey("prometheus_dir", default: "", "node_exporter textfile directory (empty: no metrics)")
    public static let retentionDays = SettingKey("retention_days", default: "30", "keep scheduled backups this many days")
    public static let keepMinVerified = SettingKey("keep_min_verified", default: "2", "never keep fewer verified backups than this")
    public static let compressionLevel = SettingKey("compression_level", default: "6", "gzip level, 1 (fast) to 9 (small)")
    public static let quickCheck = SettingKey("quick_check", default: "no", "use quick_check instead of integrity_check")
    public static let expectTables = SettingKey(
        "expect_tables",
        default: "tasks,agents,audit,checkpoints,state,metrics,sessions,memory_entries,document_index",
        "tables that must exist (comma-separated; empty: no table check)")
    public static let expectMinIndexes = SettingKey("expect_min_indexes", default: "33", "at least this many indexes")
    public static let expectIndexes = SettingKey("expect_indexes", default: "", "indexes that must exist (comma-separated; empty: count only)")
    public static let maxAge = SettingKey("max_age", default: "26h", "status warns when the newest verified backup is older")
    public static let maxErrors = SettingKey("max_errors", default: "100000", "integrity_check messages to keep (SQLite stops at 100 by default)")
    public static let expectUserVersion = SettingKey("expect_user_version", default: "", "PRAGMA user_version the database must have (empty: not checked)")
    public static let expectApplicationId = SettingKey("expect_application_id", default: "", "PRAGMA application_id the database must have (empty: not checked)")
    public static let shrinkWarning = SettingKey("shrink_warning", default: "0.5", "warn when a table lost more than this fraction of the rows in the newest backup")
    public static let tempDir = SettingKey("temp_dir", default: "/var/tmp", "where inflated copies of backups are checked")
    public static let services = SettingKey(
        "services", default: "abathur-api abathur-workers abathur-document-sync",
        "systemd units stopped around a restore (space- or comma-separated; empty: none)")
    public static let healthURL = SettingKey(
        "health_url", default: "http://localhost:8000/health", "checked after a restore: an http:// URL that must answer 2xx (empty: none)")
    public static let healthCommand = SettingKey(
        "health_command", default: "", "checked after a restore instead of health_url: a command (no shell) that must exit 0")
    public static let healthTimeout = SettingKey("health_timeout", default: "5s", "how long one health-check attempt may take")
    public static let healthRetries = SettingKey("health_retries", default: "10", "health-check attempts before the restore is rolled back")
    public static let healthInterval = SettingKey("health_interval", default: "3s", "pause between health-check attempts")
    public static let incidentDir = SettingKey("incident_dir", default: "", "where restores write incident records (empty: BACKUP_DIR/incidents)")
    public static let initCommand = SettingKey(
        "init_command", default: "", "creates a fresh database for restore --reinit (no shell; ABATHUR_DB is set; empty: --reinit refused)")

    /// Every key, in the order `--print-config` lists them.
    public static let all: [SettingKey] = [
        .database, .backupDir, .lockWait, .busyTimeoutMs, .prometheusDir, .retentionDays, .keepMinVerified,
        .compressionLevel, .quickCheck, .expectTables, .expectMinIndexes, .expectIndexes, .maxAge,
        .maxErrors, .expectUserVersion, .expectApplicationId, .shrinkWarning, .tempDir,
        .services, .healthURL, .healthCommand, .healthTimeout, .healthRetries, .healthInterval, .incidentDir, .initCommand,
    ]
}
