/// One setting as the config file, the environment and `--print-config` know it: its key,
/// its environment variable, its default, and the command-line flag that overrides it (if
/// any). Every tool reads the same table, so a key means the same thing wherever it appears.
/// What the text must be, and the value it becomes, is the `Setting` that declares the key.
public struct SettingKey: Sendable, Hashable {
    public let name: String
    public let environment: String
    public let defaultValue: String
    /// The long flag that overrides the setting, without its dashes (`busy-timeout`).
    public let flag: String?
    public let help: String

    public static func == (a: SettingKey, b: SettingKey) -> Bool { a.name == b.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// Every key, in the order `--print-config` lists them.
    public static let all: [SettingKey] = [
        Setting.database.key, Setting.backupDir.key, Setting.lockWait.key, Setting.busyTimeoutMs.key,
        Setting.prometheusDir.key, Setting.retentionDays.key, Setting.keepMinVerified.key, Setting.compressionLevel.key,
        Setting.quickCheck.key, Setting.expectTables.key, Setting.expectMinIndexes.key, Setting.expectIndexes.key,
        Setting.maxAge.key, Setting.maxErrors.key, Setting.expectUserVersion.key, Setting.expectApplicationId.key,
        Setting.shrinkWarning.key, Setting.tempDir.key, Setting.services.key, Setting.healthURL.key,
        Setting.healthCommand.key, Setting.healthTimeout.key, Setting.healthRetries.key, Setting.healthInterval.key,
        Setting.incidentDir.key, Setting.initCommand.key, Setting.safetyKeep.key, Setting.safetyMaxAge.key,
        Setting.diskWarn.key, Setting.diskCrit.key, Setting.diskWarnFree.key, Setting.diskCritFree.key, Setting.reserve.key,
    ]
}

/// A setting whose value has the type `Value`: its key and its type (parser and range) are
/// declared together, once, below; `Settings.value(_:)` is the only way to read it.
public struct Setting<Value: Sendable>: Sendable {
    public let key: SettingKey
    public let type: SettingType<Value>

    init(_ name: String, env: String? = nil, default defaultValue: String, flag: String? = nil,
         _ type: SettingType<Value>, _ help: String) {
        key = SettingKey(name: name, environment: env ?? "ABATHUR_" + name.uppercased(), defaultValue: defaultValue,
                         flag: flag, help: help)
        self.type = type
    }
}

/// How a setting's text becomes its value, and what to say when it cannot.
public struct SettingType<Value: Sendable>: Sendable {
    /// What the text should have been, for the one-line error (`expected yes or no`).
    let expected: @Sendable (String) -> String
    let parse: @Sendable (String) -> Value?

    init(expected: String, parse: @escaping @Sendable (String) -> Value?) {
        self.init(expected: { _ in expected }, parse: parse)
    }

    init(expected: @escaping @Sendable (String) -> String, parse: @escaping @Sendable (String) -> Value?) {
        self.expected = expected
        self.parse = parse
    }
}

extension SettingType where Value == String {
    /// Any text, used as it is (paths, URLs; empty usually means "none").
    public static var text: Self { Self(expected: "", parse: { $0 }) }
}

extension SettingType where Value == Int {
    public static func integer(_ range: ClosedRange<Int>) -> Self {
        Self(expected: "expected a whole number from \(range.lowerBound) to \(range.upperBound)",
             parse: { Int($0).flatMap { range.contains($0) ? $0 : nil } })
    }
}

extension SettingType where Value == Int64? {
    /// A whole number, or nil when the setting is empty (meaning "not checked").
    public static var optionalInteger: Self {
        Self(expected: "expected a whole number, or nothing", parse: { text in text.isEmpty ? .some(nil) : Int64(text).map { $0 } })
    }
}

extension SettingType where Value == Int64? {
    /// A size (`512MiB`, `2GiB`, `1048576`), or nil when the setting is empty (meaning "off").
    public static var optionalSize: Self {
        Self(expected: "expected a size such as 512MiB or 2GiB, or nothing", parse: { text in
            text.isEmpty ? .some(nil) : Bytes.parse(text).map { $0 }
        })
    }
}

extension SettingType where Value == Double {
    /// A percentage, `80%` or `80`.
    public static var percent: Self {
        Self(expected: "expected a percentage from 0 to 100, such as 80%", parse: { Percent.parse($0) })
    }

    public static var fraction: Self {
        Self(expected: "expected a fraction from 0 to 1, such as 0.5", parse: { Double($0).flatMap { $0 >= 0 && $0 <= 1 ? $0 : nil } })
    }

    /// Seconds, written `90s`, `15m`, `26h`, `7d` or plain.
    public static var duration: Self { duration(where: { _ in true }, "") }

    /// A duration that `accepted` narrows, with what to say about one it refuses.
    public static func duration(where accepted: @escaping @Sendable (Double) -> Bool, _ refused: String) -> Self {
        Self(expected: { Duration.parse($0) == nil ? "expected a duration such as 90s, 15m, 26h or 7d" : refused },
             parse: { Duration.parse($0).flatMap { accepted($0) ? $0 : nil } })
    }
}

extension SettingType where Value == Bool {
    public static var boolean: Self {
        Self(expected: "expected yes or no", parse: { text in
            switch text.lowercased() {
            case "yes", "true", "1", "on": return true
            case "no", "false", "0", "off", "": return false
            default: return nil
            }
        })
    }
}

extension SettingType where Value == [String] {
    /// Names separated by any of `separators`, blanks dropped.
    public static func list(separatedBy separators: String) -> Self {
        Self(expected: "", parse: { text in
            text.split(whereSeparator: { separators.contains($0) }).map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        })
    }

    /// A command run without a shell, split into words; quotes are refused, since no shell
    /// removes them.
    public static var command: Self {
        Self(expected: "quotes are not supported (the command runs without a shell); put the command in a script", parse: { text in
            text.contains("\"") || text.contains("'") ? nil : Subprocess.words(text)
        })
    }
}

// The settings, one declaration each. `SettingKey.all` lists them for `--print-config`.

extension Setting where Value == String {
    public static var database: Self { Self("database", env: "ABATHUR_DB", default: "/var/lib/abathur/abathur.db", flag: "db", .text, "the live database") }
    public static var backupDir: Self { Self("backup_dir", default: "/var/backups/abathur", flag: "backup-dir", .text, "where backups live") }
    public static var prometheusDir: Self { Self("prometheus_dir", default: "", .text, "node_exporter textfile directory (empty: no metrics)") }
    public static var tempDir: Self { Self("temp_dir", default: "/var/tmp", .text, "scratch space: inflated copies of backups are checked, and WALs laid over copies of the database, here") }
    public static var healthURL: Self {
        Self("health_url", default: "http://localhost:8000/health", .text, "checked after a restore: an http:// URL that must answer 2xx (empty: none)")
    }
    public static var incidentDir: Self { Self("incident_dir", default: "", .text, "where restores write incident records (empty: BACKUP_DIR/incidents)") }
}

extension Setting where Value == Int {
    public static var busyTimeoutMs: Self { Self("busy_timeout_ms", default: "5000", flag: "busy-timeout", .integer(0...3_600_000), "SQLite busy timeout in milliseconds") }
    public static var retentionDays: Self { Self("retention_days", default: "30", .integer(1...100_000), "keep scheduled backups this many days") }
    public static var keepMinVerified: Self { Self("keep_min_verified", default: "2", .integer(1...10_000), "never keep fewer verified backups than this") }
    public static var compressionLevel: Self { Self("compression_level", default: "5", flag: "compression-level", .integer(1...9), "deflate level (libdeflate's), 1 (fast) to 9 (small)") }
    public static var expectMinIndexes: Self { Self("expect_min_indexes", default: "33", .integer(0...100_000), "at least this many indexes") }
    public static var maxErrors: Self {
        Self("max_errors", default: "100000", flag: "max-errors", .integer(1...100_000_000), "integrity_check messages to keep (SQLite stops at 100 by default)")
    }
    public static var healthRetries: Self { Self("health_retries", default: "10", .integer(1...1000), "health-check attempts before the restore is rolled back") }
    public static var safetyKeep: Self {
        Self("safety_keep", default: "3", .integer(0...10_000), "keep this many safety copies, aside directories and incident records of each kind (the newest safety copy always)")
    }
}

extension Setting where Value == Int64? {
    public static var expectUserVersion: Self { Self("expect_user_version", default: "", .optionalInteger, "PRAGMA user_version the database must have (empty: not checked)") }
    public static var diskWarnFree: Self {
        Self("disk_warn_free", default: "", flag: "warn-free", .optionalSize, "diskcheck warns (exit 1) when a filesystem has less free than this (empty: not checked)")
    }
    public static var diskCritFree: Self {
        Self("disk_crit_free", default: "2GiB", flag: "crit-free", .optionalSize, "diskcheck is critical (exit 6) when a filesystem has less free than this (empty: not checked)")
    }
    public static var reserve: Self {
        Self("reserve", default: "", .optionalSize, "size of diskcheck's ballast file beside the database, released first by --fix (empty: none)")
    }
    public static var expectApplicationId: Self { Self("expect_application_id", default: "", .optionalInteger, "PRAGMA application_id the database must have (empty: not checked)") }
}

extension Setting where Value == Double {
    public static var lockWait: Self {
        Self("lock_wait", default: "0", flag: "wait", .duration, "how long to wait for the lock, in seconds or as 90s/15m (0: exit 5 at once)")
    }
    public static var maxAge: Self { Self("max_age", default: "26h", flag: "max-age", .duration, "status warns when the newest verified backup is older") }
    public static var shrinkWarning: Self { Self("shrink_warning", default: "0.5", .fraction, "warn when a table lost more than this fraction of the rows in the newest backup") }
    public static var healthTimeout: Self {
        Self("health_timeout", default: "5s", .duration(where: { $0 > 0 && $0 <= 3600 }, "expected more than 0s and at most 1h"), "how long one health-check attempt may take")
    }
    public static var diskWarn: Self {
        Self("disk_warn", default: "80%", flag: "warn", .percent, "diskcheck warns (exit 1) when a filesystem is this full, in bytes or inodes")
    }
    public static var diskCrit: Self {
        Self("disk_crit", default: "90%", flag: "crit", .percent, "diskcheck is critical (exit 6) when a filesystem is this full, in bytes or inodes")
    }
    public static var healthInterval: Self { Self("health_interval", default: "3s", .duration(where: { $0 <= 3600 }, "expected at most 1h"), "pause between health-check attempts") }
    public static var safetyMaxAge: Self {
        Self("safety_max_age", default: "30d", .duration, "safety copies, aside directories and incident records older than this are removed (beyond safety_keep)")
    }
}

extension Setting where Value == Bool {
    public static var quickCheck: Self { Self("quick_check", default: "no", flag: "quick", .boolean, "use quick_check instead of integrity_check") }
}

extension Setting where Value == [String] {
    public static var expectTables: Self {
        Self("expect_tables", default: "tasks,agents,audit,checkpoints,state,metrics,sessions,memory_entries,document_index",
             .list(separatedBy: ","), "tables that must exist (comma-separated; empty: no table check)")
    }
    public static var expectIndexes: Self { Self("expect_indexes", default: "", .list(separatedBy: ","), "indexes that must exist (comma-separated; empty: count only)") }
    public static var services: Self {
        Self("services", default: "abathur-api abathur-workers abathur-document-sync", .list(separatedBy: " ,\t"),
             "systemd units stopped around a restore (space- or comma-separated; empty: none)")
    }
    public static var healthCommand: Self {
        Self("health_command", default: "", .command, "checked after a restore instead of health_url: a command (no shell) that must exit 0")
    }
    public static var initCommand: Self {
        Self("init_command", default: "", .command, "creates a fresh database for restore --reinit (no shell; ABATHUR_DB is set; empty: --reinit refused)")
    }
}
