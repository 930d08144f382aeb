import AbathurCore

/// ArgumentParser has an `ExitCode` of its own; in this module the name means SPEC.md's table.
typealias ExitCode = AbathurCore.ExitCode
