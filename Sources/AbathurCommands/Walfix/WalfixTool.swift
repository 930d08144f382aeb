import AbathurCore
import ArgumentParser

/// `abathur-walfix`: the `-wal` inspected offline, checkpointed, and a damaged one repaired
/// without losing a commit (FACTS.md 7, 10, 11, 14).
struct WalfixTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abathur-walfix",
        abstract: "Inspect the abathur database's WAL offline, checkpoint it, and repair a damaged one without losing a commit.",
        discussion: """
            With no subcommand, inspects: 'abathur-walfix [--max-wal-size SIZE] [--json] ...' runs 'inspect' \
            (see 'abathur-walfix help inspect'). Never run 'rm abathur.db-wal': it deletes committed transactions.
            """,
        version: AbathurVersion.current,
        subcommands: [Inspect.self, Checkpoint.self, Repair.self],
        defaultSubcommand: Inspect.self
    )
}

extension WalfixTool {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read the -wal offline (never through SQLite, never writing it): committed prefix, damage, commits SQLite would drop and the tables they touched, the -shm, the processes holding it, and whether it fits the database.")

        @OptionGroup var common: CommonOptions

        @Option(name: .customLong("max-wal-size"), help: ArgumentHelp("Warn (exit 1) when the -wal is larger than this (such as 512MiB or 1GiB).", valueName: "size"))
        var maxWALSize: String?

        func validate() throws {
            if let maxWALSize, Bytes.parse(maxWALSize) == nil {
                throw ValidationError("--max-wal-size '\(maxWALSize)': expected a size such as 512MiB, 1GiB or 1048576")
            }
        }

        func run() throws {
            let context = ToolContext(tool: "abathur-walfix", command: "inspect", options: common)
            try context.run({ context in try WalfixCommands.inspect(maxWALSize: maxWALSize.flatMap(Bytes.parse), context) },
                            metrics: WalfixCommands.inspectMetrics)
        }
    }

    struct Checkpoint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Checkpoint the WAL with the busy timeout, after checking offline that no committed data would be lost; report busy, log and checkpointed frames, and name the processes that block it.")

        @OptionGroup var common: CommonOptions

        @Option(help: ArgumentHelp("passive (never waits, never blocks the service), full, restart or truncate (default truncate: waits up to the busy timeout for readers, then empties the -wal).", valueName: "mode"))
        var mode: WALCheckpoint.Mode = .truncate

        func run() throws {
            let context = ToolContext(tool: "abathur-walfix", command: "checkpoint", options: common)
            try context.run({ context in try WalfixCommands.checkpoint(mode: mode, context) }, metrics: WalfixCommands.checkpointMetrics)
        }
    }

    struct Repair: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Repair a damaged WAL with the service stopped: forensic copy first, the committed data rebuilt on a copy and checked, installed through the safe swap; the -wal is moved aside, never deleted.")

        @OptionGroup var common: CommonOptions

        @Flag(name: .customLong("accept-loss"), help: "Keep only what SQLite's own recovery keeps (the committed prefix), dropping the commits after the damage.")
        var acceptLoss = false

        @Flag(name: .customLong("beyond-break"), help: "Also keep the intact commits after one damaged frame: build a new database from the committed prefix plus them, and install it only if it passes the full checks.")
        var beyondBreak = false

        @Flag(name: .customLong("no-services"), help: "Do not stop or start the configured units (the operator manages them).")
        var noServices = false

        @Flag(help: "Swap even when a process still holds the database.")
        var force = false

        func validate() throws {
            if acceptLoss && beyondBreak { throw ValidationError("give --accept-loss or --beyond-break, not both") }
        }

        func run() throws {
            let context = ToolContext(tool: "abathur-walfix", command: "repair", options: common)
            let choice: WALRepair.Choice = acceptLoss ? .acceptLoss : beyondBreak ? .beyondBreak : .keepEverything
            try context.run({ context in try WalfixCommands.repair(choice: choice, noServices: noServices, force: force, context) },
                            metrics: WalfixCommands.repairMetrics)
        }
    }
}

extension WALCheckpoint.Mode: ExpressibleByArgument {}
