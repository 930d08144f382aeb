import AbathurCore

/// `abathur-restore --list` and `--show NAME`.
enum BackupListing {
    struct Row: Encodable {
        var name: String
        var path: String
        var created: String?
        var createdUnix: Int64?
        var kind: String
        var label: String
        var gzBytes: Int64?
        var databaseBytes: Int64?
        /// verified (complete, its checks passed), incomplete (no valid manifest, or not a
        /// regular file), or unverified (a manifest whose checks did not pass).
        var state: String
        var problem: String?
        var rowCounts: [String: Int64]?
        var totalRows: Int64?

        init(_ entry: Catalog.Entry) {
            name = entry.fileName
            path = entry.path
            kind = entry.name.kind.rawValue
            label = entry.name.label
            let m = entry.manifest
            created = m?.created ?? Clock.iso8601(entry.name.time)
            createdUnix = m?.createdUnix ?? entry.name.time
            gzBytes = entry.status?.size
            databaseBytes = m?.database.bytes
            rowCounts = m?.rowCounts
            totalRows = m.map { $0.rowCounts.values.reduce(0, +) }
            state = entry.isComplete ? "verified" : (m != nil && m?.verified == false ? "unverified" : "incomplete")
            if !entry.isComplete {
                problem = entry.status == nil ? "the .db.gz is missing"
                    : entry.lacksManifest ? "no manifest: a backup was interrupted while publishing it"
                    : entry.status!.isRegular ? (entry.manifestProblem ?? (m == nil ? "no manifest" : "size or checks do not match the manifest"))
                    : "not a regular file"
            }
        }
    }

    struct ListOutput: Encodable {
        var directory: String
        var backups: [Row]
    }

    static func catalog(_ context: ToolContext) throws -> Catalog {
        let directory = context.settings.string(.backupDir)
        guard try FileStatus.of(directory) != nil else { throw AbathurError(.usage, directory, "no such backup directory") }
        return try Catalog.scan(directory)
    }

    static func list(_ context: ToolContext) throws -> (ExitCode, ListOutput?) {
        let catalog = try catalog(context)
        let rows = catalog.entries.map(Row.init)
        let out = context.console
        if out.stdoutIsTerminal {
            if rows.isEmpty { out.result("no backups in \(catalog.directory)") }
            let header = ["NAME", "CREATED (UTC)", "SIZE", "DATABASE", "ROWS", "STATE"]
            var table = [header]
            for row in rows {
                table.append([row.name, row.created ?? "?", row.gzBytes.map(Bytes.describe) ?? "-", row.databaseBytes.map(Bytes.describe) ?? "-",
                              row.totalRows.map(String.init) ?? "-", row.state + (row.problem.map { " (\($0))" } ?? "")])
            }
            let widths = (0..<header.count).map { column in table.map { $0[column].count }.max() ?? 0 }
            for line in table {
                out.result(line.enumerated().map { $0.offset == header.count - 1 ? $0.element : $0.element.padding(widths[$0.offset]) }.joined(separator: "  "))
            }
        } else {
            // Like ls: one name per line, newest first, for head, xargs and while read. Only
            // what a restore by name accepts, so `--list | head -1` is a restore target; the
            // rest is named on stderr (and in --json with its state).
            for row in rows where row.state == "verified" { out.result(row.name) }
            for row in rows where row.state != "verified" {
                context.warn("\(row.path): \(row.state) backup, not listed: \(row.problem ?? "checks did not pass")")
            }
        }
        return (.success, ListOutput(directory: catalog.directory, backups: rows))
    }

    struct ShowOutput: Encodable {
        var backup: Row
        var manifest: Manifest?
    }

    static func show(_ name: String, _ context: ToolContext) throws -> (ExitCode, ShowOutput?) {
        let catalog = try catalog(context)
        guard let entry = catalog.entry(named: name) else {
            throw AbathurError(.usage, Paths.join(catalog.directory, Paths.basename(name)), "no such backup (see abathur-restore --list)")
        }
        let row = Row(entry)
        let out = context.console
        out.result("\(entry.path): \(row.state)" + (row.problem.map { " (\($0))" } ?? ""))
        guard let m = entry.manifest else {
            context.report(AbathurError(.incompleteBackup, entry.path, "not a complete backup: \(row.problem ?? "no manifest")"))
            return (.verificationFailed, ShowOutput(backup: row, manifest: nil))
        }
        out.result("  created      \(m.created) (\(m.kind.rawValue), label \(m.label))")
        out.result("  source       \(m.source)")
        out.result("  tools        abathur-tools \(m.toolVersion), SQLite \(m.sqliteVersion), deflate level \(m.compressionLevel)")
        out.result("  .db.gz       \(m.gz.bytes) bytes, sha256 \(m.gz.sha256)")
        out.result("  database     \(m.database.bytes) bytes, sha256 \(m.database.sha256)")
        out.result("  pages        \(m.database.pageCount) of \(m.database.pageSize) bytes, \(m.database.freelistCount) free")
        out.result("  user_version \(m.database.userVersion), application_id \(m.database.applicationId)")
        out.result("  schema       \(m.schema.tables.count) tables, \(m.schema.indexes.count) indexes, sha256 \(m.schema.sha256)")
        out.result("  checks")
        for check in m.checks { out.result("    \((check.ok ? "ok" : "FAILED").padding(7)) \(check.name): \(check.detail)") }
        out.result("  row counts")
        for table in m.rowCounts.keys.sorted() { out.result("    \(table.padding(24)) \(m.rowCounts[table]!)") }
        let durations = m.durationsMs.keys.sorted().map { "\($0) \(Double(m.durationsMs[$0]!) / 1000)s" }
        out.result("  durations    \(durations.joined(separator: ", "))")
        if !entry.isComplete {
            context.report(AbathurError(.incompleteBackup, entry.path, "not a complete backup: \(row.problem ?? "checks did not pass")"))
            return (.verificationFailed, ShowOutput(backup: row, manifest: m))
        }
        return (.success, ShowOutput(backup: row, manifest: m))
    }
}
