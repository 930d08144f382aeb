/// What an operator turns into the post-mortem: every real restore, rollback and fresh start
/// writes `INCIDENT_DIR/STAMP-KIND.json` (the whole outcome) and `STAMP-KIND.md` (a Timeline
/// and a Resolution section, in the post-mortem template's shape), both written atomically.
public enum IncidentRecord {
    /// Writes both files; returns the Markdown file's path.
    public static func write(_ outcome: RestoreJob.Outcome, exitCode: ExitCode, error: AbathurError?,
                             into directory: String, toolVersion: String) throws -> String {
        try write(kind: outcome.kind.rawValue, started: outcome.steps.first?.startedUnix, outcome: outcome, exitCode: exitCode,
                  error: error, into: directory, toolVersion: toolVersion) { json in
            markdown(outcome, exitCode: exitCode, error: error, json: json)
        }
    }

    /// `STAMP-KIND.json` (the outcome) and `STAMP-KIND.md` (what `markdown` writes, given the
    /// JSON file's path), each written atomically, under a name no record has yet.
    public static func write<Outcome: Encodable>(kind: String, started: Double?, outcome: Outcome, exitCode: ExitCode, error: AbathurError?,
                                                into directory: String, toolVersion: String,
                                                markdown: (String) -> String) throws -> String {
        try SafeFiles.ensureDirectory(directory)
        let stamp = Clock.fileStamp(Int64(started ?? Clock.now()))
        var base = Paths.join(directory, "\(stamp)-\(kind)")
        var n = 2
        while try FileStatus.of(base + ".json") != nil || FileStatus.of(base + ".md") != nil {
            base = Paths.join(directory, "\(stamp)-\(kind)_\(n)")
            n += 1
        }
        let json = try JSONFormat.encode(IncidentDocument(toolVersion: toolVersion, exitCode: exitCode.rawValue, error: error?.description, outcome: outcome))
        try SafeFiles.writeAtomically(json, to: base + ".json")
        try SafeFiles.writeAtomically(Array(markdown(base + ".json").utf8), to: base + ".md")
        return base + ".md"
    }

    static func markdown(_ o: RestoreJob.Outcome, exitCode: ExitCode, error: AbathurError?, json: String) -> String {
        let what = o.kind == .reinit ? "fresh start (reinit)" : "restore"
        let started = o.steps.first.map { $0.started } ?? Clock.iso8601(Int64(Clock.now()))
        var text = "# Incident: abathur database \(what), \(started)\n\n"
        text += "- Database: `\(o.database)`\n"
        if let source = o.source {
            text += "- Source: `\(source.path ?? "stdin")`" + (source.manifest.map { " (backup created \($0.created))" } ?? "") + "\n"
        }
        text += "- Result: **\(o.result.rawValue)** (exit \(exitCode.rawValue))\n"
        text += "- Details: `\(json)`\n\n"
        text += "## Timeline\n\nAll times UTC.\n\n"
        for step in o.steps {
            let time = String(step.started.dropFirst(11).prefix(8))
            text += "- \(time) \(step.name): \(step.ok ? "" : "**FAILED** ")\(step.detail) (\(Timeline.seconds(step.durationMs)))\n"
        }
        text += "\n## Resolution\n\n"
        switch o.result {
        case .installed:
            let source = o.source.map { $0.path ?? "stdin" } ?? "a fresh database from init_command"
            text += "The database was replaced by \(source) in \(Timeline.seconds(o.totalMs))"
            if let rows = o.candidate?.rowCounts { text += " (\(rows.values.reduce(0, +)) rows in \(rows.count) tables)" }
            text += ".\n"
            if let health = o.health { text += "Health check: \(health.target) answered \(health.detail) after \(health.attempts) attempt(s).\n" }
        case .rolledBack:
            text += "The restored database failed (\(error?.message ?? "see the timeline")), so the database as it was was put back.\n"
        case .refused, .failed:
            text += "Nothing was replaced: \(error?.description ?? "see the timeline").\n"
        }
        if let copy = o.safetyCopy { text += "\nThe database as it was before (raw db, -wal, -shm): `\(copy.directory)`.\n" }
        if let copy = o.rollbackSafetyCopy { text += "The restored database that was rolled back: `\(copy.directory)`.\n" }
        if let aside = o.swap?.asideDirectory { text += "Stale companion files moved aside: `\(aside)`.\n" }
        if !o.warnings.isEmpty { text += "\nWarnings:\n" + o.warnings.map { "- \($0)\n" }.joined() }
        return text
    }
}

/// The JSON half of an incident record.
struct IncidentDocument<Outcome: Encodable>: Encodable {
    var format = 1
    var toolVersion: String
    var exitCode: Int32
    var error: String?
    var outcome: Outcome
}
