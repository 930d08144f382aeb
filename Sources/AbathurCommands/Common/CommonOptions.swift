import AbathurCore
import ArgumentParser

/// The options every abathur tool takes, with the names SPEC.md fixes.
public struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("db"), help: ArgumentHelp("The live database (default /var/lib/abathur/abathur.db).", valueName: "path"))
    var database: String?

    @Option(name: .customLong("backup-dir"), help: ArgumentHelp("Where backups live (default /var/backups/abathur).", valueName: "dir"))
    var backupDir: String?

    @Option(help: ArgumentHelp("Config file (default /etc/abathur/abathur.conf).", valueName: "file"))
    var config: String?

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    @Flag(help: "Print less on stderr (errors only).")
    var quiet = false

    @Flag(help: "Print more on stderr.")
    var verbose = false

    @Option(help: ArgumentHelp("Wait this long for the lock (seconds, or 90s, 15m) instead of exiting 5.", valueName: "seconds"))
    var wait: String?

    @Option(name: .customLong("busy-timeout"), help: ArgumentHelp("SQLite busy timeout in milliseconds (default 5000).", valueName: "ms"))
    var busyTimeout: String?

    @Option(help: ArgumentHelp("Write node_exporter textfile metrics to this file (default: TOOL.prom in prometheus_dir, when set).", valueName: "file"))
    var prometheus: String?

    @Flag(name: .customLong("print-config"), help: "Print every setting with its effective value and source, then exit.")
    var printConfig = false

    public init() {}

    /// What the common flags say about settings, with the spelling used.
    var settingFlags: [SettingKey: (flag: String, value: String)] {
        var flags: [SettingKey: (flag: String, value: String)] = [:]
        if let database { flags[.database] = ("--db", database) }
        if let backupDir { flags[.backupDir] = ("--backup-dir", backupDir) }
        if let wait { flags[.lockWait] = ("--wait", wait) }
        if let busyTimeout { flags[.busyTimeoutMs] = ("--busy-timeout", busyTimeout) }
        return flags
    }
}
