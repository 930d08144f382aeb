import AbathurCore
import ArgumentParser

extension BackupTool {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report the age of the newest verified backup; exit 1 when there is none or it is too old.")

        @OptionGroup var common: CommonOptions

        @Option(name: .setting(.maxAge), help: ArgumentHelp("Warn (exit 1) when the newest verified backup is older (default \(Setting.maxAge.key.defaultValue)).", valueName: "duration"))
        var maxAge: String?

        struct Output: Encodable {
            var newest: String?
            var created: String?
            var ageSeconds: Int64?
            var maxAgeSeconds: Int64
            var fresh: Bool
            var verifiedBackups: Int
            var incomplete: [String]
            var foreign: [String]
            /// What restores left behind, kept by `safety_keep` and `safety_max_age`.
            var safety: Leftovers
        }

        struct Leftovers: Encodable {
            var safetyCopies: SafetyRetention.Usage
            var asideDirectories: SafetyRetention.Usage
            var incidentRecords: SafetyRetention.Usage

            init(_ usage: [SafetyRetention.Kind: SafetyRetention.Usage]) {
                safetyCopies = usage[.safetyCopy] ?? .init()
                asideDirectories = usage[.asideDirectory] ?? .init()
                incidentRecords = usage[.incidentRecord] ?? .init()
            }

            /// `safety copies: 2 (1.5 MiB), aside directories: 0, incident records: 4 (12.0 KiB)`
            var line: String {
                [("safety copies", safetyCopies), ("aside directories", asideDirectories), ("incident records", incidentRecords)]
                    .map { "\($0.0): \($0.1.count)" + ($0.1.count > 0 ? " (\(Bytes.describe($0.1.bytes)))" : "") }
                    .joined(separator: ", ")
            }
        }

        func run() throws {
            var flags = SettingFlags()
            flags.set(.maxAge, maxAge)
            let context = ToolContext(tool: "abathur-backup", command: "status", options: common)
            try context.run(flags: flags, { context -> (ExitCode, Output?) in
                let maxAge = try context.settings.value(.maxAge)
                let directory = context.settings.string(.backupDir)
                let safety = Leftovers(try SafetyRetention.usage(SafetyRetention.Places(settings: context.settings)))
                // Before the first backup the directory may not exist yet: that is "no backup".
                guard try FileStatus.of(directory) != nil else {
                    context.console.result("no verified backup: \(directory) does not exist")
                    context.console.result(safety.line)
                    return (.warning, Output(newest: nil, created: nil, ageSeconds: nil, maxAgeSeconds: Int64(maxAge), fresh: false,
                                             verifiedBackups: 0, incomplete: [], foreign: [], safety: safety))
                }
                let catalog = try Catalog.scan(directory)
                let incomplete = catalog.entries.filter { !$0.isComplete }.map(\.fileName)
                for name in incomplete { context.warn("\(Paths.join(directory, name)): incomplete backup (no valid manifest or not a regular file)") }
                var output = Output(newest: nil, created: nil, ageSeconds: nil, maxAgeSeconds: Int64(maxAge), fresh: false,
                                    verifiedBackups: catalog.complete.count, incomplete: incomplete, foreign: catalog.foreign, safety: safety)
                guard let newest = catalog.complete.first, let manifest = newest.manifest else {
                    context.console.result("no verified backup in \(directory)")
                    context.console.result(safety.line)
                    return (.warning, output)
                }
                let age = max(0, Clock.now() - Double(manifest.createdUnix))
                output.newest = newest.fileName
                output.created = manifest.created
                output.ageSeconds = Int64(age)
                output.fresh = age <= maxAge
                let verdict = output.fresh ? "ok" : "TOO OLD"
                context.console.result("\(newest.path): \(Duration.describe(age)) old (max \(Duration.describe(maxAge))): \(verdict)")
                context.console.result(safety.line)
                return (output.fresh ? .success : .warning, output)
            }, metrics: { sink, _, output in
                guard let output else { return }
                if let age = output.ageSeconds {
                    sink.gauge("abathur_backup_newest_age_seconds", "Age of the newest verified backup.", Double(age))
                }
                sink.gauge("abathur_backup_verified_backups", "Number of complete, verified backups.", Double(output.verifiedBackups))
                for (kind, usage) in [("safety_copies", output.safety.safetyCopies), ("aside_directories", output.safety.asideDirectories),
                                      ("incident_records", output.safety.incidentRecords)] {
                    sink.gauge("abathur_backup_restore_leftovers", "Safety copies, aside directories and incident records that restores left.",
                               Double(usage.count), labels: [("kind", kind)])
                    sink.gauge("abathur_backup_restore_leftover_bytes", "Bytes in what restores left.", Double(usage.bytes), labels: [("kind", kind)])
                }
            })
        }
    }
}
