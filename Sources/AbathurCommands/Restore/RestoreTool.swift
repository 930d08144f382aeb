import AbathurCore
import ArgumentParser

/// `abathur-restore`: list backups, restore one safely, rehearse a restore, or start fresh.
struct RestoreTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abathur-restore",
        abstract: "Restore the abathur database from a verified backup, safely: checked candidate, safety copy, atomic swap, health check, automatic rollback.",
        discussion: """
            SOURCE is a backup NAME in the backup directory (.db.gz optional), a PATH to a .db.gz \
            or .db file (anything containing '/'), or '-' for a .db.gz or .db stream on stdin. \
            Without SOURCE or --before, the newest verified backup is restored.
            """,
        version: AbathurVersion.current)

    @OptionGroup var common: CommonOptions

    @Argument(help: ArgumentHelp("A backup name, a path containing '/', or '-' for stdin (default: the newest verified backup).", valueName: "source"))
    var source: String?

    @Flag(help: "List the backups: newest first, one name per line when stdout is not a terminal.")
    var list = false

    @Option(help: ArgumentHelp("Show one backup in detail: manifest, checks, schema, row counts.", valueName: "name"))
    var show: String?

    @Option(help: ArgumentHelp("Restore the newest verified backup created before this UTC time (2026-11-27T13:00:00Z, '2026-11-27 13:00:00', 2026-11-27 or @UNIXTIME).", valueName: "time"))
    var before: String?

    @Flag(name: .customLong("dry-run"), help: "Print the plan (backup, units, paths, space needed), check the backup in temp_dir, and change nothing live.")
    var dryRun = false

    @Option(help: ArgumentHelp("Restore to this path instead of the live database; units and the health check are left alone.", valueName: "path"))
    var to: String?

    @Flag(name: .customLong("no-services"), help: "Do not stop or start the configured units (the operator manages them).")
    var noServices = false

    @Flag(help: "Accept a symlinked or non-regular source, and swap even when a process still holds the database.")
    var force = false

    @Flag(help: "Restore the newest verified backup into a scratch directory, check it, compare it with the live database and report the time to recover; touches nothing live.")
    var drill = false

    @Flag(help: "Fresh start: build a new database with init_command, check it, and install it like a backup (the old files go to the safety copy).")
    var reinit = false

    @Option(help: ArgumentHelp("Apply a schema migration (an SQL file, or the name of a shipped one such as milestone-2-down) through the safe path: units stopped, a pre-migrate backup, the file on a copy in one transaction, the checks, the swap.", valueName: "file"))
    var migrate: String?

    @Option(name: .customLong("expect-tables"), help: ArgumentHelp("With --migrate: the tables that must exist afterwards (comma-separated), instead of the file's '-- expect-tables' and the config's expect_tables.", valueName: "list"))
    var expectTables: String?

    var beforeTime: Int64? {
        before.flatMap(Clock.parseMoment)
    }

    func validate() throws {
        let modes = [list, show != nil, drill && migrate == nil, reinit, migrate != nil].filter { $0 }.count
        if modes > 1 { throw ValidationError("give one of --list, --show, --drill, --reinit or --migrate") }
        if migrate != nil && (source != nil || before != nil || to != nil) {
            throw ValidationError("--migrate changes the live database's schema in place; it takes no SOURCE, --before or --to")
        }
        if expectTables != nil && migrate == nil { throw ValidationError("--expect-tables goes with --migrate") }
        if migrate != nil && dryRun && drill { throw ValidationError("give --dry-run or --drill, not both") }
        if (list || show != nil) && (source != nil || before != nil || dryRun || to != nil || noServices || force) {
            throw ValidationError("--list and --show take no source and no restore options")
        }
        if source != nil && before != nil { throw ValidationError("give SOURCE or --before TIME, not both") }
        if before != nil && beforeTime == nil {
            throw ValidationError("--before '\(before!)': expected 2026-11-27T13:00:00Z, '2026-11-27 13:00:00', 2026-11-27 or @UNIXTIME (UTC)")
        }
        if reinit && (source != nil || before != nil) { throw ValidationError("--reinit restores no backup; it takes no SOURCE or --before") }
        if dryRun && (drill || reinit) && migrate == nil { throw ValidationError("--dry-run plans a restore; --drill and --reinit have no dry run") }
        if drill && migrate == nil && (to != nil || noServices) { throw ValidationError("--drill never touches the live database or the units; --to and --no-services do not apply") }
        if let to, to.isEmpty { throw ValidationError("--to needs a path") }
    }

    var command: String {
        if migrate != nil { return drill ? "migrate-drill" : dryRun ? "migrate-dry-run" : "migrate" }
        if list { return "list" }
        if show != nil { return "show" }
        if drill { return "drill" }
        if reinit { return "reinit" }
        if dryRun { return "dry-run" }
        return "restore"
    }

    func run() throws {
        let context = ToolContext(tool: "abathur-restore", command: command, options: common)
        if let migrate {
            let mode: MigrationJob.Mode = drill ? .drill : dryRun ? .dryRun : .migrate
            let tables = expectTables.map { $0.split(separator: ",").map { String($0.filter { $0 != " " && $0 != "\t" }) }.filter { !$0.isEmpty } }
            try context.run({ context in try MigrateCommands.migrate(migrate, mode: mode, expectTables: tables, request: try request(context), context) },
                            metrics: MigrateCommands.metrics)
        } else if list {
            try context.run({ context in try BackupListing.list(context) })
        } else if let show {
            try context.run({ context in try BackupListing.show(show, context) })
        } else if drill {
            try context.run({ context in try RestoreCommands.drill(try request(context), context) },
                            metrics: RestoreCommands.drillMetrics)
        } else if dryRun {
            try context.run({ context in try RestoreCommands.plan(try request(context), context) })
        } else {
            try context.run({ context in try RestoreCommands.restore(try request(context), kind: reinit ? .reinit : .restore, context) },
                            metrics: RestoreCommands.restoreMetrics)
        }
    }

    func request(_ context: ToolContext) throws -> RestoreRequest {
        var request = try RestoreRequest(settings: context.settings, toolVersion: AbathurVersion.current)
        request.force = force
        if let source {
            request.source = source == "-" ? .standardInput : source.contains("/") ? .path(source) : .named(source)
        } else if let time = beforeTime {
            request.source = .before(time)
        }
        if let to {
            request.database = to
            request.isAlternateTarget = true
            request.services = []
        }
        if noServices { request.services = [] }
        return request
    }
}
