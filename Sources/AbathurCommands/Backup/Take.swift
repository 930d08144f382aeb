import AbathurCore
import ArgumentParser

extension BackupTool {
    struct Take: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a consistent, verified, compressed backup of the live database.")

        @OptionGroup var common: CommonOptions

        @Option(help: ArgumentHelp("Take a manual backup named LABEL_YYYYMMDD_HHMMSS.db.gz, kept outside retention.", valueName: "name"))
        var label: String?

        @Flag(help: "Take a manual backup named manual_YYYYMMDD_HHMMSS.db.gz, kept outside retention.")
        var manual = false

        @Flag(name: .setting(.quickCheck), help: "Check the copy with quick_check instead of integrity_check.")
        var quick = false

        @Option(name: .setting(.compressionLevel), help: ArgumentHelp("Deflate level (libdeflate's), 1 (fast) to 9 (small); default \(Setting.compressionLevel.key.defaultValue).", valueName: "n"))
        var compressionLevel: String?

        @Flag(help: "Stream the verified .db.gz to stdout; nothing is kept in the backup directory (no manifest, no retention).")
        var stdout = false

        @Option(name: .customLong("snapshot-step"), help: ArgumentHelp("Copy the snapshot N pages at a time (with a progress bar), or 'all' in one step; default: 256 when stderr is a terminal, else all. Both copy inside one read transaction.", valueName: "pages"))
        var snapshotStep: String?

        func validate() throws {
            if let label, !BackupName.isValidLabel(label) {
                throw ValidationError("invalid label '\(label)': use 1 to 40 lower-case letters, digits and dashes, not 'abathur'")
            }
            if stdout && common.json { throw ValidationError("--stdout and --json both want stdout; choose one") }
            if let snapshotStep, SnapshotStep(snapshotStep) == nil {
                throw ValidationError("invalid --snapshot-step '\(snapshotStep)': give a number of pages from 1 to \(Int32.max), or 'all'")
            }
        }

        /// A person at a terminal sees a progress bar, so the copy goes in steps there; under
        /// cron and in pipelines it goes all at once (FACTS.md 2).
        func chosenSnapshotStep(_ console: Console) -> SnapshotStep {
            snapshotStep.flatMap(SnapshotStep.init) ?? (console.stderrIsTerminal ? .pages(256) : .allAtOnce)
        }

        struct Output: Encodable {
            var backup: Manifest
            var path: String?
            var swept: [String]
            var removed: [String]
            var retention: [RetentionRow]
        }

        struct RetentionRow: Encodable {
            var name: String
            var keep: Bool
            var rule: String
        }

        func run() throws {
            var flags = SettingFlags()
            flags.set(.quickCheck, quick)
            flags.set(.compressionLevel, compressionLevel)
            let context = ToolContext(tool: "abathur-backup", command: "take", options: common)
            try context.run(flags: flags, { context -> (ExitCode, Output?) in
                var request = try BackupRequest(settings: context.settings, toolVersion: AbathurVersion.current)
                if manual || label != nil {
                    request.kind = .manual
                    request.label = label ?? "manual"
                }
                request.toStdout = stdout
                request.snapshotStep = chosenSnapshotStep(context.console)
                let outcome = try BackupJob(request: request, events: context.console.events).run()
                let m = outcome.manifest
                if let path = outcome.path {
                    if context.console.stdoutIsTerminal {
                        let seconds = Double(m.durationsMs["total"] ?? 0) / 1000
                        context.console.result("\(path): \(Bytes.describe(m.gz.bytes)) (database \(Bytes.describe(m.database.bytes))), verified in \(seconds)s")
                    } else {
                        context.console.result(path)
                    }
                }
                for name in outcome.removed { context.console.info("pruned \(name)") }
                let rows = outcome.retention.map { RetentionRow(name: $0.name, keep: $0.keep, rule: $0.rule) }
                return (.success, Output(backup: m, path: outcome.path, swept: outcome.swept, removed: outcome.removed, retention: rows))
            }, metrics: { sink, code, output in
                let directory = context.settings?.string(.backupDir)
                if let m = output?.backup {
                    sink.gauge("abathur_backup_duration_seconds", "Duration of the last successful backup.", Double(m.durationsMs["total"] ?? 0) / 1000)
                    sink.gauge("abathur_backup_size_bytes", "Size of the last backup.", Double(m.gz.bytes), labels: [("file", "gz")])
                    sink.gauge("abathur_backup_size_bytes", "Size of the last backup.", Double(m.database.bytes), labels: [("file", "db")])
                    for check in m.checks {
                        sink.gauge("abathur_backup_check_ok", "1 when the check passed on the last backup.", check.ok ? 1 : 0, labels: [("check", check.name)])
                    }
                }
                if let directory, let catalog = try? Catalog.scan(directory) {
                    if let newest = catalog.complete.first?.manifest {
                        sink.gauge("abathur_backup_last_success_timestamp_seconds", "Creation time of the newest verified backup.", Double(newest.createdUnix))
                    }
                    sink.gauge("abathur_backup_verified_backups", "Number of complete, verified backups.", Double(catalog.complete.count))
                    if let free = try? Filesystem.of(directory).freeBytes {
                        sink.gauge("abathur_backup_free_bytes", "Free bytes on the backup directory's filesystem.", Double(free))
                    }
                }
            })
        }
    }
}
