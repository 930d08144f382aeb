import AbathurCore
import ArgumentParser

extension BackupTool {
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply retention: show each backup with keep/remove and the rule that decided.")

        @OptionGroup var common: CommonOptions

        @Flag(name: .customLong("dry-run"), help: "Show the decisions without removing anything.")
        var dryRun = false

        struct Row: Encodable {
            var name: String
            var keep: Bool
            var rule: String
        }

        struct Output: Encodable {
            var dryRun: Bool
            var decisions: [Row]
            var removed: [String]
        }

        func run() throws {
            let context = ToolContext(tool: "abathur-backup", command: "prune", options: common)
            try context.run({ context -> (ExitCode, Output?) in
                let settings = context.settings!
                let directory = settings.string(.backupDir)
                let policy = try RetentionPolicy(settings: settings)
                let lock = try FileLock.acquire(Paths.join(directory, Catalog.lockName), wait: try settings.value(.lockWait))
                defer { lock.release() }
                if !dryRun {
                    let recovery = Catalog.recover(directory)
                    for line in recovery.summary { context.console.info(line) }
                    for problem in recovery.problems { context.warn(problem) }
                }
                let decisions = try policy.plan(Catalog.scan(directory), now: Clock.now())
                for decision in decisions {
                    context.console.result("\(decision.keep ? "keep  " : "remove") \(decision.name)  # \(decision.rule)")
                }
                var removed: [String] = []
                if !dryRun {
                    removed = try policy.apply(decisions, in: directory)
                    try Catalog.writeSums(directory)
                }
                let rows = decisions.map { Row(name: $0.name, keep: $0.keep, rule: $0.rule) }
                return (.success, Output(dryRun: dryRun, decisions: rows, removed: removed))
            })
        }
    }
}
