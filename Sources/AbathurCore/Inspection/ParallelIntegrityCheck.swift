#if canImport(Glibc)
import Glibc
#endif

/// `PRAGMA integrity_check` on several cores: for a file nothing else writes (a snapshot, a
/// backup's inflated copy, a restore candidate), and for the live database, each connection
/// opened as the one `LiveReader` chose. With a writer running, each job reads its own
/// snapshot; every check lies within one job (a table and its indexes; the page accounting),
/// so each is made on one consistent state. On an abathur database integrity_check is
/// one core's work for most of a backup's or a restore's time (1 GiB: 7.3 s, mostly looking
/// up every row in every index), and splitting it halves that on two cores.
///
/// SQLite's own pragma splits along these lines (pragma.c, `PragTyp_INTEGRITY_CHECK`):
/// - `PRAGMA quick_check` walks every b-tree, the freelist and the page accounting (a page
///   used twice or never), checks every row's types, NOT NULL and CHECK constraints and
///   every index's entry count: everything integrity_check does except looking rows up in
///   their indexes;
/// - `PRAGMA integrity_check(TABLE)` does everything integrity_check does for one table and
///   its indexes: their b-trees, every row's types and constraints, every row's entry in
///   every index, UNIQUE, and the entry counts (not the freelist nor the page accounting,
///   which is why quick_check runs too).
///
/// quick_check plus integrity_check(T) for every table checks all that integrity_check
/// checks (and `PRAGMA foreign_key_check` runs beside them, as one more job; with no tables,
/// quick_check and foreign_key_check run side by side: `--quick`); the b-trees are walked twice, which costs about one core-second per GiB. The
/// jobs run on `threads` connections of their own, on threads at idle CPU priority (as the
/// compression's: the service comes first), each taking the next job from one queue in the
/// caller's order (the tables with the most indexes first); their messages are merged in job
/// order, so the same file always gives the same report. A per-table check lists at most 100
/// problems (SQLite's default; its argument is the table's name, so no other limit can be
/// given): when one reaches that and more were asked for, `run` throws `Truncated`, and the
/// caller runs the one pragma, which lists them all.
enum ParallelIntegrityCheck {
    /// What `PRAGMA integrity_check(TABLE)` lists at most.
    static let perTableLimit = 100

    /// A table had more problems than its check could list.
    struct Truncated: Error {}

    /// The structure, and the rows of `PRAGMA foreign_key_check`, which runs as one more job.
    struct Outcome {
        var structure: DatabaseInspection.Structure
        var foreignKeys: Fact<[[String?]]>
    }

    /// `pragma`: the check this stands for, `integrity_check` (with every table) or
    /// `quick_check` (with none).
    static func run(_ file: DatabaseInspection.ParallelCheck, pragma: String, maxErrors: Int, tables: [String],
                    threads: Int) throws -> Outcome {
        // quick_check and foreign_key_check first, then the tables (the caller's order).
        let foreignKeyJob = 1
        let jobs = ["PRAGMA quick_check(\(maxErrors))", "PRAGMA foreign_key_check"] + tables.map { "PRAGMA integrity_check(\(SQL.literal($0)))" }
        var results = [(messages: [String], failure: SQLiteError?)?](repeating: nil, count: jobs.count)
        var foreignKeys: Fact<[[String?]]> = .success([])
        let monitor = Monitor()
        var next = 0
        var openFailure: (any Error)?
        var running: [pthread_t] = []
        defer { for thread in running { Threads.join(thread) } }
        for _ in 0..<min(threads, jobs.count) {
            running.append(try Threads.start(idle: true) {
                let connection: Connection
                do {
                    connection = try Connection(path: file.path, mode: file.mode, busyTimeoutMs: file.busyTimeoutMs)
                    if file.mmap { try connection.execute("PRAGMA mmap_size = \(DatabaseInspection.mmapSize)") }
                } catch {
                    monitor.locked { openFailure = openFailure ?? error }
                    return
                }
                while true {
                    let job: Int? = monitor.locked {
                        guard next < jobs.count else { return nil }
                        defer { next += 1 }
                        return next
                    }
                    guard let job else { return }
                    if job == foreignKeyJob {
                        let rows = Result { () throws(SQLiteError) in try connection.rows(jobs[job]) }
                        monitor.locked { foreignKeys = rows }
                        continue
                    }
                    var messages: [String] = []
                    var failure: SQLiteError?
                    do throws(SQLiteError) {
                        let statement = try connection.prepare(jobs[job])
                        while try statement.step() {
                            messages += (statement.text(at: 0) ?? "").split(separator: "\n").map(String.init)
                                .filter { !$0.hasPrefix("*** in database ") }
                        }
                    } catch {
                        failure = error
                    }
                    monitor.locked { results[job] = (messages, failure) }
                }
            })
        }
        for thread in running { Threads.join(thread) }
        running = []
        if let openFailure { throw openFailure }
        if maxErrors > perTableLimit, results.dropFirst(2).contains(where: { ($0?.messages.count ?? 0) >= perTableLimit }) { throw Truncated() }
        var structure = DatabaseInspection.Structure(pragma: pragma, messages: [], failure: nil)
        for case let result? in results {
            structure.failure = structure.failure ?? result.failure
            if result.messages != ["ok"] { structure.messages += result.messages }
        }
        if structure.messages.isEmpty && structure.failure == nil { structure.messages = ["ok"] }
        structure.messages = Array(structure.messages.prefix(maxErrors))
        return Outcome(structure: structure, foreignKeys: foreignKeys)
    }
}
