import AbathurCore
import ArgumentParser

/// `abathur-diskcheck`: disk-space health of everything the abathur database needs, and the
/// ordered, safe way out of a full disk (issue 12).
struct DiskcheckTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abathur-diskcheck",
        abstract: "Report free space and inodes for the database's, the backups' and the temp directories' filesystems; with --fix, free space in a safe order.",
        discussion: """
            Exit 0 healthy, 1 warning, 6 critical (not enough space). --fix runs, stopping as soon as the target is met: \
            1 release the reserve, 2 checkpoint (TRUNCATE), 3 remove stale temp files, 4 remove old safety copies and aside \
            directories, 5 prune backups down to the floor, 6 VACUUM only when there is room for it, with the units stopped. \
            Never 'find -delete' the backup directory: it removes the newest verified backups as readily as the oldest.
            """,
        version: AbathurVersion.current)

    @OptionGroup var common: CommonOptions

    @Option(name: .setting(.diskWarn), help: ArgumentHelp("Warn (exit 1) when a filesystem is this full, in bytes or inodes (default \(Setting.diskWarn.key.defaultValue)).", valueName: "percent"))
    var warn: String?

    @Option(name: .setting(.diskCrit), help: ArgumentHelp("Critical (exit 6) when a filesystem is this full, in bytes or inodes (default \(Setting.diskCrit.key.defaultValue)).", valueName: "percent"))
    var crit: String?

    @Option(name: .setting(.diskWarnFree), help: ArgumentHelp("Warn when a filesystem has less than this free, such as 5GiB (default: not checked).", valueName: "size"))
    var warnFree: String?

    @Option(name: .setting(.diskCritFree), help: ArgumentHelp("Critical when a filesystem has less than this free (default \(Setting.diskCritFree.key.defaultValue)).", valueName: "size"))
    var critFree: String?

    @Flag(help: "Free space in the documented order until every filesystem meets the target.")
    var fix = false

    @Flag(name: .customLong("dry-run"), help: "Print the --fix plan with the bytes each step would free, and change nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Where --fix stops: a percentage used (75%) or a size free (5GiB) on every filesystem (default: below the --warn and --warn-free levels).", valueName: "level"))
    var target: String?

    @Flag(name: .customLong("include-manual"), help: "Let --fix prune manual backups too (never below the floor of verified backups).")
    var includeManual = false

    @Flag(name: .customLong("no-services"), help: "Do not stop or start the configured units around the VACUUM (the operator manages them).")
    var noServices = false

    @Flag(help: "Print one monitoring-plugin status line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    var nagios = false

    func validate() throws {
        if let target, DiskTarget.parse(target) == nil {
            throw ValidationError("--target '\(target)': expected a percentage used such as 75% or a size free such as 5GiB")
        }
        if (target != nil || includeManual || noServices) && !(fix || dryRun) {
            throw ValidationError("--target, --include-manual and --no-services go with --fix or --dry-run")
        }
        if fix && dryRun { throw ValidationError("give --fix or --dry-run, not both") }
        if nagios && common.json { throw ValidationError("--nagios and --json both want stdout; choose one") }
        if nagios && (fix || dryRun) { throw ValidationError("--nagios reports; it does not go with --fix or --dry-run") }
    }

    func run() throws {
        var flags = SettingFlags()
        flags.set(.diskWarn, warn)
        flags.set(.diskCrit, crit)
        flags.set(.diskWarnFree, warnFree)
        flags.set(.diskCritFree, critFree)
        let command = fix ? "fix" : dryRun ? "dry-run" : "report"
        let context = ToolContext(tool: "abathur-diskcheck", command: command, options: common)
        if nagios { context.console.quiet = true }
        let mode: DiskcheckCommands.Mode = fix ? .fix : dryRun ? .dryRun : .report
        let request = DiskcheckCommands.Request(mode: mode, target: target.flatMap(DiskTarget.parse), includeManual: includeManual,
                                                noServices: noServices, nagios: nagios)
        // Stale temp files are reported, and removed by --fix, not swept at start.
        try context.run(flags: flags, sweepAtStart: false, { context in
            try DiskcheckCommands.run(request, context)
        }, metrics: DiskcheckCommands.metrics)
    }
}
