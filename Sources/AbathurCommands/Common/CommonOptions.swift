import AbathurCore
import ArgumentParser

/// The options every abathur tool takes, with the names SPEC.md fixes.
public struct CommonOptions: ParsableArguments {
    @Option(name: .setting(.database), help: ArgumentHelp("The live database (default \(Setting.database.key.defaultValue)).", valueName: "path"))
    var database: String?

    @Option(name: .setting(.backupDir), help: ArgumentHelp("Where backups live (default \(Setting.backupDir.key.defaultValue)).", valueName: "dir"))
    var backupDir: String?

    @Option(help: ArgumentHelp("Config file (default /etc/abathur/abathur.conf).", valueName: "file"))
    var config: String?

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    @Flag(help: "Print less on stderr (errors only).")
    var quiet = false

    @Flag(help: "Print more on stderr.")
    var verbose = false

    @Option(name: .setting(.lockWait), help: ArgumentHelp("Wait this long for the lock (seconds, or 90s, 15m) instead of exiting 5.", valueName: "seconds"))
    var wait: String?

    @Option(name: .setting(.busyTimeoutMs), help: ArgumentHelp("SQLite busy timeout in milliseconds (default \(Setting.busyTimeoutMs.key.defaultValue)).", valueName: "ms"))
    var busyTimeout: String?

    @Option(help: ArgumentHelp("Write node_exporter textfile metrics to this file (default: TOOL.prom in prometheus_dir, when set).", valueName: "file"))
    var prometheus: String?

    @Flag(name: .customLong("print-config"), help: "Print every setting with its effective value and source, then exit.")
    var printConfig = false

    public init() {}

    /// What the common flags say about settings.
    var settingFlags: SettingFlags {
        var flags = SettingFlags()
        flags.set(.database, database)
        flags.set(.backupDir, backupDir)
        flags.set(.lockWait, wait)
        flags.set(.busyTimeoutMs, busyTimeout)
        return flags
    }
}

/// What a command line says about settings: each flag is named after the setting it
/// overrides (`@Option(name: .setting(.busyTimeoutMs))`), whose declaration spells it.
struct SettingFlags {
    private(set) var values: [SettingKey: String] = [:]

    mutating func set<V>(_ setting: Setting<V>, _ value: String?) {
        precondition(setting.key.flag != nil, "\(setting.key.name) declares no flag")
        if let value { values[setting.key] = value }
    }

    /// A flag without a value (`--quick`) turns a yes/no setting on.
    mutating func set(_ setting: Setting<Bool>, _ on: Bool) {
        set(setting, on ? "yes" : nil)
    }

    /// Both; `other` wins where both set a key.
    func merging(_ other: SettingFlags) -> SettingFlags {
        var merged = self
        merged.values.merge(other.values) { $1 }
        return merged
    }
}

extension NameSpecification {
    /// The long flag that `setting` declares.
    static func setting<V>(_ setting: Setting<V>) -> NameSpecification { .customLong(setting.key.flag!) }
}
