/// `abathur-walfix repair`: a damaged `-wal` handled without losing a commit SQLite could
/// still give back, through the safe install (`SafeInstall`), with the service stopped:
///
/// lock → stop the units → prove nothing holds the database → forensic copy (db, `-wal`,
/// `-shm`, fsynced, in `BACKUP_DIR/forensic/`, kept) → from the copy: read the WAL, lay its
/// committed prefix over a scratch copy beside the database (`WALOverlay`), decide → full
/// checks → swap (the live `-wal` and `-shm` renamed aside as they are: never checkpointed
/// into the live file, never deleted) → post-check → start the units → health check.
///
/// | the WAL | no flag | `--accept-loss` | `--beyond-break` |
/// |---|---|---|---|
/// | nothing committed after the break (clean, torn tail, crash mid-transaction) | prefix installed | same | same |
/// | commits after a damaged frame | refused, exit 4 | prefix installed, exit 1 | prefix + the intact later commits, checked |
/// | does not fit the database | refused, exit 4 | the main file alone, exit 1 | refused, exit 4 |
public final class WALRepair {
    public enum Choice: String, Sendable, Encodable {
        case keepEverything = "default"
        case acceptLoss = "accept-loss"
        case beyondBreak = "beyond-break"
    }

    public struct Outcome: Sendable, Encodable {
        public var database: String
        public var choice: Choice
        /// What was built: "committed prefix", "beyond the break", "main file alone"; or
        /// "nothing to repair", or "not repaired" (refused or failed: `result` says which).
        public var action = "not repaired"
        /// "repaired", "rolled back", "refused" or "failed"; nil when there was nothing to do.
        public var result: String?
        public var forensicCopy: String?
        public var forensicFiles: [SafetyCopy.File] = []
        public var committedFrames = 0
        public var commits = 0
        public var droppedCommits = 0
        public var recoveredCommits = 0
        public var lostCommits = 0
        /// Pages of the commits left out, by table or index.
        public var lostTables: [String: Int] = [:]
        public var damagedPage: UInt32?
        public var damagedPageTable: String?
        public var damagedPageSuperseded: Bool?
        /// What each choice keeps and loses, when the run refused.
        public var choices: [String] = []
        public var fit: WALOverlay.Fit?
        public var fitDetail: String?
        public var asideDirectory: String?
        public var movedAside: [String] = []
        public var candidateSha256: String?
        public var rowCounts: [String: Int64]?
        public var holders: [Holder] = []
        public var steps: [Timeline.Step] = []
        public var totalMs: Int64 = 0
        public var warnings: [String] = []
    }

    /// Where forensic copies go in the backup directory; never pruned.
    public static let forensicDirName = "forensic"
    /// Where they go beside the database when the backup directory is read-only.
    public static let forensicBesideDatabaseDirName = ".abathur-forensic"

    let request: RestoreRequest
    let choice: Choice
    public let timeline: Timeline
    public private(set) var outcome: Outcome
    private var temps: [String] = []
    private var installedPath: String?

    public init(request: RestoreRequest, choice: Choice, events: EventSink = .ignore) {
        self.request = request
        self.choice = choice
        timeline = Timeline(events: events)
        outcome = Outcome(database: request.database, choice: choice)
    }

    deinit {
        for path in temps { SafeFiles.removeQuietly(path) }
    }

    /// Runs the repair; the outcome is kept whether it succeeds or throws.
    public func run() throws {
        defer {
            outcome.steps = timeline.steps
            outcome.totalMs = timeline.totalMs
        }
        let database = request.database
        try SafeInstall.requireExisting(database)
        let files = DatabaseFiles(database)
        if try FileStatus.of(files.journal) != nil {
            throw AbathurError(.refused, files.journal, "a rollback journal beside the database: it is not in WAL mode, and SQLite must roll that journal back first; abathur-walfix repairs WALs, nothing was changed")
        }
        var locks: [FileLock] = []
        defer { locks.removeAll() }
        let forensicRoot = try timeline.step("lock") {
            let held = try FileLock.backupDirectoryAndDatabase(request.backupDir, database, wait: request.lockWait, refusingReadOnly: nil)
            locks = held.locks
            let swept = SafeFiles.sweepTemps(in: Paths.directory(of: database), directories: false)
            let root = !held.readOnly ? Paths.join(request.backupDir, WALRepair.forensicDirName)
                : Paths.join(Paths.directory(of: database), WALRepair.forensicBesideDatabaseDirName)
            return (root, "backup directory and database locked" + (swept.isEmpty ? "" : "; swept \(swept.count) stale temp file(s)"))
        }
        guard let walStatus = try FileStatus.of(files.wal), walStatus.size > 0 else {
            outcome.action = "nothing to repair"
            timeline.note("look for a -wal", ok: true, "no -wal beside \(database) (or it is empty): nothing to repair")
            return
        }
        guard walStatus.isRegular else { throw AbathurError(.unsafePath, files.wal, "not a regular file") }

        var policy = SafeInstall.Policy(database: database, units: Units(request.services), health: request.health,
                                        safetyRoot: forensicRoot, tag: "walfix", force: request.force,
                                        busyTimeoutMs: request.busyTimeoutMs, check: request.check)
        policy.retirement = .bridge
        policy.copyName = "forensic copy"
        let install = SafeInstall(policy: policy, timeline: timeline)
        let result = install.install(preparing: { forensic in try self.prepare(forensic) })
        let report = install.report
        outcome.result = result.result == .installed ? "repaired" : result.result.rawValue
        outcome.holders = report.holders
        if let copy = report.safetyCopy {
            outcome.forensicCopy = copy.directory
            outcome.forensicFiles = copy.files
        }
        outcome.asideDirectory = report.swap?.asideDirectory
        outcome.movedAside = report.swap?.movedAside ?? []
        outcome.warnings += report.warnings
        // The installed candidate is the database now; every other temp file goes.
        if report.swapped, let installed = installedPath { temps.removeAll { $0 == installed } }
        switch result {
        case .installed:
            return
        case .rolledBack(_, let why):
            throw AbathurError(.checkFailed, database, "repair rolled back: \(why); \(database) and its -wal are as they were (forensic copy \(outcome.forensicCopy ?? "?"))")
        case .refused(let why), .failed(_, let why):
            throw why
        }
    }

    /// With the service stopped and the forensic copy made: read the copy, decide, build and
    /// check the candidate beside the database.
    private func prepare(_ forensic: SafetyCopy?) throws -> SafeInstall.Candidate {
        guard let forensic, let mainCopy = forensic.path(of: .main), let walCopy = forensic.path(of: .wal) else {
            throw AbathurError(.internal, request.database, "the forensic copy lacks the database or its -wal")
        }
        let directory = Paths.directory(of: request.database)
        let wal = try timeline.step("read the WAL") {
            let wal = try WALInspection.inspect(walCopy)
            var detail = "\(wal.framesInFile) frames, \(wal.commits) commits in the committed prefix (\(wal.committedFrames) frames)"
            if let frame = wal.firstInvalidFrame { detail += "; first invalid frame \(frame) (\(wal.invalidReason ?? "?"))" }
            if wal.droppedCommits > 0 { detail += "; \(wal.droppedCommits) committed transaction(s) after it" }
            return (wal, detail)
        }
        outcome.committedFrames = wal.committedFrames
        outcome.commits = wal.commits
        outcome.droppedCommits = wal.droppedCommits
        let built = try timeline.step("lay the committed prefix over a copy") {
            let built = try WALOverlay.build(database: mainCopy, wal: wal, walPath: walCopy, into: directory, busyTimeoutMs: request.busyTimeoutMs)
            temps += DatabaseFiles(built.path).all
            return (built, built.overlay.detail)
        }
        let overlay = built.overlay
        outcome.fit = overlay.fit
        outcome.fitDetail = overlay.detail
        let lost = overlay.tally(Set(wal.dropped.flatMap(\.pages)))
        outcome.lostTables = Dictionary(uniqueKeysWithValues: lost.map { ($0.name, $0.pages) })

        let candidate: String
        if overlay.fit == .breaks {
            guard overlay.mainFileSound == true else {
                throw AbathurError(.corrupt, request.database, "\(overlay.detail); nothing was changed (forensic copy \(forensic.directory))")
            }
            guard choice == .acceptLoss else {
                outcome.choices = [
                    "--accept-loss: installs the main file alone, as it was before this WAL: keeps 0 of the WAL's \(wal.commits + wal.droppedCommits) commit(s); the whole -wal is moved aside and kept",
                    "or restore the newest backup (abathur-restore), or leave it as it is and keep the service stopped",
                ]
                throw AbathurError(.walLoss, DatabaseFiles(request.database).wal, "does not fit the database: \(overlay.detail); nothing was changed")
            }
            candidate = SafeFiles.tempPath(in: directory, tag: "walfix.db")
            temps += DatabaseFiles(candidate).all
            try SafeFiles.copy(mainCopy, toNew: candidate, sync: true)
            outcome.action = "main file alone"
            outcome.lostCommits = wal.commits + wal.droppedCommits
            outcome.warnings.append("--accept-loss: the WAL did not fit the database; installed the main file alone, without the WAL's \(outcome.lostCommits) commit(s) (kept in \(forensic.directory))")
        } else if wal.droppedCommits == 0 {
            candidate = built.path
            outcome.action = "committed prefix"
            outcome.recoveredCommits = wal.commits
        } else {
            let beyond = try WALBeyondBreak.plan(walCopy, wal)
            if let page = beyond.damagedPage {
                outcome.damagedPage = page
                outcome.damagedPageTable = overlay.owner(of: page)
                outcome.damagedPageSuperseded = beyond.damagedPageSuperseded
            }
            switch choice {
            case .keepEverything:
                outcome.choices = choices(wal, lost: lost, beyond: beyond, overlay: overlay)
                throw AbathurError(.walLoss, DatabaseFiles(request.database).wal,
                                   "\(wal.lossDescription!) (pages: \(WALOverlay.describe(lost))); nothing was changed: choose --accept-loss or --beyond-break (forensic copy \(forensic.directory))")
            case .acceptLoss:
                candidate = built.path
                outcome.action = "committed prefix"
                outcome.recoveredCommits = wal.commits
                outcome.lostCommits = wal.droppedCommits
                outcome.warnings.append("--accept-loss: dropped \(wal.droppedCommits) committed transaction(s) after frame \(wal.firstInvalidFrame ?? 0) (\(WALOverlay.describe(lost))); they are in the forensic copy \(forensic.directory)")
            case .beyondBreak:
                if let refusal = beyond.refusal {
                    throw AbathurError(.walLoss, DatabaseFiles(request.database).wal, "--beyond-break cannot be used: \(refusal); nothing was changed")
                }
                try timeline.step("apply the commits after the break") {
                    try beyond.apply(from: walCopy, to: built.path)
                    return ((), "\(beyond.images.count) page image(s) of \(wal.droppedCommits) commit(s) written; \(beyond.databasePages) pages")
                }
                candidate = built.path
                    outcome.action = "beyond the break"
                outcome.recoveredCommits = wal.commits + wal.droppedCommits
                if let page = beyond.damagedPage, !beyond.damagedPageSuperseded {
                    let table = overlay.owner(of: page)
                    outcome.warnings.append(beyond.damagedPageUnplaceable
                        ? "frame \(beyond.damagedFrame!)'s page number (\(page)) is damaged: its image was left out, so the transaction it belonged to may be incomplete"
                        : "page \(page) (\(table)) keeps the image of damaged frame \(beyond.damagedFrame!): no later commit rewrote it; the result passed the full checks")
                }
            }
        }
        return try check(candidate)
    }

    /// What each choice keeps and loses, with numbers, table by table.
    private func choices(_ wal: WALInspection, lost: [(name: String, pages: Int)], beyond: WALBeyondBreak, overlay: WALOverlay) -> [String] {
        var lines = ["--accept-loss: keeps the \(wal.commits) commit(s) of the committed prefix (frames 1-\(wal.committedFrames)), as SQLite would; loses \(wal.droppedCommits) commit(s), \(lost.reduce(0) { $0 + $1.pages }) page(s): \(WALOverlay.describe(lost))"]
        if let refusal = beyond.refusal {
            lines.append("--beyond-break: not possible here: \(refusal)")
        } else {
            var line = "--beyond-break: keeps all \(wal.commits + wal.droppedCommits) commit(s), building a new database from the prefix and the \(wal.droppedCommits) intact commit(s) after frame \(wal.firstInvalidFrame ?? 0)"
            if let page = beyond.damagedPage {
                line += beyond.damagedPageSuperseded
                    ? "; the damaged frame's page \(page) (\(overlay.owner(of: page))) is rewritten by a later commit: the damage costs nothing"
                    : "; the damaged frame's page \(page) (\(overlay.owner(of: page))) is not rewritten later: its damaged image is kept, and the result is installed only if it passes the full checks"
            }
            lines.append(line)
        }
        lines.append("or restore the newest backup (abathur-restore), which loses everything since it was taken")
        return lines
    }

    /// The full checks on the candidate; a failure changes nothing (exit 3).
    private func check(_ candidate: String) throws -> SafeInstall.Candidate {
        try timeline.step("check the candidate") {
            // A candidate with no -wal beside it is one self-contained file.
            _ = try DatabaseSwap.settle(candidate, busyTimeoutMs: request.busyTimeoutMs)
            let check = try DatabaseCheck.run(path: candidate, options: request.check)
            if let failed = check.failure {
                throw AbathurError(.checkFailed, request.database, "the repaired database fails \(failed.name): \(failed.detail); nothing was changed")
            }
            if let foreign = check.foreign { throw AbathurError(.foreign, request.database, "the repaired database \(foreign); nothing was changed") }
            let (sha, bytes) = try GzipFile.sha256(of: candidate)
            outcome.candidateSha256 = sha
            installedPath = candidate
            outcome.rowCounts = check.rowCounts
            let rows = check.rowCounts.values.reduce(0, +)
            return (SafeInstall.Candidate(path: candidate, sha256: sha, rowCounts: check.rowCounts),
                    "\(check.checks.map(\.name).joined(separator: ", ")) passed; \(rows) rows, \(bytes) bytes")
        }
    }
}
