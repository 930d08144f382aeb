import AbathurCore
import ArgumentParser

extension BackupTool {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-check stored backups (gzip CRC, SHA-256, integrity, schema, row counts); exit 3 on any bad one.")

        @OptionGroup var common: CommonOptions

        @Argument(help: ArgumentHelp("A backup file name in the backup directory, .db.gz optional (default: the newest backup).", valueName: "name"))
        var name: String?

        @Flag(help: "Verify every backup in the backup directory.")
        var all = false

        @Flag(help: "Check with quick_check instead of integrity_check.")
        var quick = false

        func validate() throws {
            if name != nil && all { throw ValidationError("give a backup name or --all, not both") }
        }

        struct Output: Encodable {
            var backups: [BackupFileCheck]
            var failed: Int
            /// Backups without any manifest (an interrupted publish): incomplete, each a failure.
            var incomplete: [String] = []
        }

        func run() throws {
            var flags: [SettingKey: (flag: String, value: String)] = [:]
            if quick { flags[.quickCheck] = ("--quick", "yes") }
            let context = ToolContext(tool: "abathur-backup", command: "verify", options: common)
            try context.run(flags: flags, { context -> (ExitCode, Output?) in
                let settings = context.settings!
                let directory = settings.string(.backupDir)
                var database = DatabaseCheck.Options(quick: try settings.boolean(.quickCheck), expectation: try SchemaExpectation(settings: settings))
                database.busyTimeoutMs = try settings.integer(.busyTimeoutMs, in: 0...3_600_000)
                // A read-only backup directory (a DR share) is only read: no lock, nothing written.
                let lock = try FileLock.acquireUnlessReadOnly(Paths.join(directory, Catalog.lockName), wait: try settings.seconds(.lockWait))
                defer { lock?.release() }
                if lock != nil {
                    let recovery = Catalog.recover(directory)
                    for line in recovery.summary { context.console.info(line) }
                    for problem in recovery.problems { context.warn(problem) }
                }
                let catalog = try Catalog.scan(directory)
                var selected: [Catalog.Entry]
                if let name {
                    guard let entry = catalog.entry(named: name) else {
                        throw AbathurError(.usage, Paths.join(directory, Paths.basename(name)), "no such backup")
                    }
                    selected = [entry]
                } else if all {
                    selected = catalog.entries
                } else {
                    // The newest backup that has a manifest to verify against, and any newer one
                    // without any (incomplete: it fails below), not taken for the newest backup.
                    selected = Array(catalog.entries.prefix { $0.lacksManifest }) + Array(catalog.entries.drop { $0.lacksManifest }.prefix(1))
                }
                // A .gz without any manifest is an interrupted publish: nothing proves it whole, so
                // it fails, as it does for abathur-integrity and abathur-restore.
                let incomplete = selected.filter(\.lacksManifest)
                guard !selected.isEmpty else {
                    context.warn("\(directory): no backups to verify")
                    return (.warning, Output(backups: [], failed: 0))
                }
                let options = BackupFileCheck.Options(tempDirectory: settings.string(.tempDir), database: database, tag: "verify.db")
                var results: [BackupFileCheck] = []
                var unverified = 0
                for (index, entry) in selected.enumerated() {
                    context.console.progress("verify", done: Int64(index), total: Int64(selected.count))
                    let result = try BackupFileCheck.run(entry.path, manifest: entry.manifest, manifestProblem: entry.manifestProblem,
                                                         requireManifest: true, options: options)
                    results.append(result)
                    if result.ok {
                        context.console.result("\(entry.path): ok")
                        if let note = result.unverifiedWhenTaken {
                            unverified += 1
                            context.warn("\(entry.path): \(note)")
                        }
                    } else {
                        context.console.result("\(entry.path): FAILED: \(result.problems.joined(separator: "; "))")
                        context.console.error(AbathurError(result.failure?.kind ?? .damagedBackup, entry.path, result.problems.first ?? "failed"))
                    }
                }
                context.console.endProgress()
                let failed = results.filter { !$0.ok }.count
                let code: ExitCode = failed > 0 ? .verificationFailed : unverified == 0 ? .success : .warning
                return (code, Output(backups: results, failed: failed, incomplete: incomplete.map(\.fileName)))
            }, metrics: { sink, _, output in
                guard let output else { return }
                sink.gauge("abathur_backup_verify_checked", "Backups checked by the last verify.", Double(output.backups.count))
                sink.gauge("abathur_backup_verify_failed", "Backups that failed the last verify.", Double(output.failed))
            })
        }
    }
}
