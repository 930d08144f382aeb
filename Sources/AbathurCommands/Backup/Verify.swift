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
            var backups: [BackupVerifier.Result]
            var failed: Int
        }

        func run() throws {
            var flags: [SettingKey: (flag: String, value: String)] = [:]
            if quick { flags[.quickCheck] = ("--quick", "yes") }
            let context = ToolContext(tool: "abathur-backup", command: "verify", options: common)
            try context.run(flags: flags, { context -> (ExitCode, Output?) in
                let settings = context.settings!
                let directory = settings.string(.backupDir)
                var options = DatabaseCheck.Options(quick: try settings.boolean(.quickCheck), expectation: try SchemaExpectation(settings: settings))
                options.busyTimeoutMs = try settings.integer(.busyTimeoutMs, in: 0...3_600_000)
                // A read-only backup directory (a DR share) is only read: no lock, nothing written.
                let lock = try FileLock.acquireUnlessReadOnly(Paths.join(directory, Catalog.lockName), wait: try settings.seconds(.lockWait))
                defer { lock?.release() }
                if lock != nil { _ = try SafeFiles.sweepTemps(in: directory) }
                let catalog = try Catalog.scan(directory)
                let selected: [Catalog.Entry]
                if let name {
                    guard let entry = catalog.entry(named: name) else {
                        throw AbathurError(.usage, Paths.join(directory, Paths.basename(name)), "no such backup")
                    }
                    selected = [entry]
                } else if all {
                    selected = catalog.entries
                } else {
                    selected = Array(catalog.entries.prefix(1))
                }
                guard !selected.isEmpty else {
                    context.warn("\(directory): no backups to verify")
                    return (.warning, Output(backups: [], failed: 0))
                }
                let verifier = BackupVerifier(tempDirectory: settings.string(.tempDir), options: options)
                var results: [BackupVerifier.Result] = []
                for (index, entry) in selected.enumerated() {
                    context.console.progress("verify", done: Int64(index), total: Int64(selected.count))
                    let result = try verifier.verify(entry)
                    results.append(result)
                    if result.ok {
                        context.console.result("\(entry.path): ok")
                    } else {
                        context.console.result("\(entry.path): FAILED: \(result.problems.joined(separator: "; "))")
                        context.console.error(AbathurError(.verificationFailed, entry.path, result.problems.first ?? "failed"))
                    }
                }
                context.console.endProgress()
                let failed = results.filter { !$0.ok }.count
                return (failed > 0 ? .verificationFailed : .success, Output(backups: results, failed: failed))
            }, metrics: { sink, _, output in
                guard let output else { return }
                sink.gauge("abathur_backup_verify_checked", "Backups checked by the last verify.", Double(output.backups.count))
                sink.gauge("abathur_backup_verify_failed", "Backups that failed the last verify.", Double(output.failed))
            })
        }
    }
}
