import AbathurCore
import ArgumentParser

/// `abathur-backup`: online, consistent, compressed, verified backups; retention; status.
struct BackupTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abathur-backup",
        abstract: "Take, verify and prune online backups of the abathur SQLite database.",
        discussion: """
            With no subcommand, takes a backup: 'abathur-backup [--label NAME] [--quick] [--stdout] ...' \
            runs 'take' (see 'abathur-backup help take' for its options).
            """,
        version: AbathurVersion.current,
        subcommands: [Take.self, Status.self, Verify.self, Prune.self],
        defaultSubcommand: Take.self
    )
}
