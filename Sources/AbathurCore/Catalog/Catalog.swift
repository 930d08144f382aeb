/// What a backup directory holds: our backups (with or without a manifest) and everything
/// else, which is reported and never touched.
public struct Catalog: Sendable {
    public struct Entry: Sendable {
        public var name: BackupName
        public var path: String
        public var manifestPath: String
        /// lstat of the `.db.gz`; nil when only a manifest is left.
        public var status: FileStatus?
        public var manifest: Manifest?
        /// Why the manifest could not be used, when there is one that could not.
        public var manifestProblem: String?

        /// A complete backup: a regular `.db.gz` and a manifest that names it, whose checks passed.
        public var isComplete: Bool {
            guard let status, status.isRegular, let manifest else { return false }
            return manifest.name == name.fileName && manifest.verified && manifest.gz.bytes == status.size
        }

        /// A `.db.gz` with no manifest at all: a publish that was interrupted between the
        /// two links, which the next locked run finishes when the run's temp manifest is
        /// still there and matches (`recover`). Until then it is shown as incomplete, counts
        /// for nothing, and is never removed (no manifest proves it ours).
        public var lacksManifest: Bool {
            status?.isRegular == true && manifest == nil && manifestProblem == nil
        }

        public var fileName: String { name.fileName }
    }

    public var directory: String
    /// Newest first.
    public var entries: [Entry]
    /// Names in the directory that are not ours (temp files, lock and SHA256SUMS excluded).
    public var foreign: [String]

    public static let sumsName = "SHA256SUMS"
    public static let lockName = ".abathur.lock"
    /// Where restores keep the safety copies of the database they replaced.
    public static let safetyDirName = "safety"
    /// Where restores write incident records unless `incident_dir` says otherwise.
    public static let incidentDirName = "incidents"

    public static func scan(_ directory: String) throws -> Catalog {
        let names = try SafeFiles.listDirectory(directory)
        var byName: [BackupName: Entry] = [:]
        var foreign: [String] = []
        for file in names {
            if [sumsName, lockName, SampleState.fileName, safetyDirName, incidentDirName, WALRepair.forensicDirName].contains(file) || file.hasPrefix(SafeFiles.tempPrefix) { continue }
            let isManifest = file.hasSuffix(BackupName.suffix + BackupName.manifestSuffix)
            let dataName = isManifest ? String(file.dropLast(BackupName.manifestSuffix.count)) : file
            guard let name = BackupName(fileName: dataName) else {
                foreign.append(file)
                continue
            }
            if byName[name] == nil {
                byName[name] = Entry(name: name, path: Paths.join(directory, name.fileName),
                                     manifestPath: Paths.join(directory, name.manifestName))
            }
            if !isManifest {
                byName[name]!.status = try FileStatus.of(byName[name]!.path)
            }
        }
        for (name, var entry) in byName {
            if let status = try FileStatus.of(entry.manifestPath) {
                if !status.isRegular {
                    entry.manifestProblem = "manifest is not a regular file"
                } else {
                    do {
                        let manifest = try Manifest.read(entry.manifestPath)
                        if manifest.name == name.fileName {
                            entry.manifest = manifest
                        } else {
                            entry.manifestProblem = "manifest names \(manifest.name)"
                        }
                    } catch {
                        entry.manifestProblem = "\(error)"
                    }
                }
            }
            byName[name] = entry
        }
        return Catalog(directory: directory, entries: byName.values.sorted { $0.name > $1.name }, foreign: foreign)
    }

    /// Complete backups, newest first.
    public var complete: [Entry] { entries.filter(\.isComplete) }

    public func entry(named fileName: String) -> Entry? {
        let wanted = fileName.hasSuffix(BackupName.suffix) ? fileName : fileName + BackupName.suffix
        return entries.first { $0.fileName == Paths.basename(wanted) }
    }

    /// The first free name for a backup of `kind`/`label` at `time`.
    public func freeName(kind: BackupName.Kind, label: String, time: Int64) throws -> BackupName {
        var name = BackupName(kind: kind, label: label, time: time)
        while try FileStatus.of(Paths.join(directory, name.fileName)) != nil
            || FileStatus.of(Paths.join(directory, name.manifestName)) != nil {
            name.sequence += 1
        }
        return name
    }

    /// `SHA256SUMS` in `sha256sum` format for every complete backup, oldest first, written
    /// atomically, so `cd DIR && sha256sum -c SHA256SUMS` checks them with standard tools.
    public static func writeSums(_ directory: String) throws {
        try SafeFiles.writeAtomically(sums(of: try scan(directory)), to: Paths.join(directory, sumsName))
    }

    static func sums(of catalog: Catalog) -> [UInt8] {
        var text = ""
        for entry in catalog.complete.reversed() {
            text += "\(entry.manifest!.gz.sha256)  \(entry.fileName)\n"
        }
        return Array(text.utf8)
    }

    /// What a run that holds the backup directory's lock found and did first (`recover`).
    public struct Recovery: Sendable {
        /// Backups whose interrupted publish was finished.
        public var finished: [String] = []
        /// Temp files and directories of dead runs that were removed.
        public var swept: [String] = []
        public var sumsRewritten = false
        /// What could not be done; the run goes on (none of it is needed to run safely).
        public var problems: [String] = []

        /// One line per thing done, for `--verbose`.
        public var summary: [String] {
            finished.map { "finished the interrupted publish of \($0): its manifest was linked from the killed run's temp manifest" }
                + (swept.isEmpty ? [] : ["swept \(swept.count) stale temp file(s): \(swept.joined(separator: " "))"])
                + (sumsRewritten ? ["\(sumsName) missed a complete backup or listed one that is gone: rewritten"] : [])
        }
    }

    /// The first thing every run that holds the backup directory's lock does (backup, prune,
    /// verify, restore, drill), in this order, which matters:
    /// 1. finish interrupted publishes: a `.gz` that got its final name while its manifest
    ///    did not (a kill between the two links) gets the manifest from the killed run's own
    ///    temp manifest, when that is a valid manifest naming it whose size and SHA-256 match
    ///    the `.gz` (it was fsynced before the `.gz` was linked). This comes before step 2,
    ///    which would remove that temp manifest (the start-up sweep of every run spares it:
    ///    `isPendingManifest`). The lock proves no run is publishing here now, so the temp
    ///    manifest's pid need not be dead;
    /// 2. sweep the temp files of dead runs;
    /// 3. bring `SHA256SUMS` up to date when it misses a complete backup (a kill after the
    ///    manifest and before `SHA256SUMS`) or lists a file that is gone (a kill during
    ///    retention).
    /// A `.gz` without a usable manifest stays: nothing is deleted that no manifest proves ours.
    public static func recover(_ directory: String) -> Recovery {
        var recovery = Recovery()
        for name in (try? SafeFiles.listDirectory(directory)) ?? [] where isPendingManifest(name, in: directory) {
            let finalManifest = String(name.dropFirst(SafeFiles.tempPrefix.count).split(separator: "-", maxSplits: 2)[2])
            let gzName = String(finalManifest.dropLast(BackupName.manifestSuffix.count))
            let gz = Paths.join(directory, gzName)
            let temp = Paths.join(directory, name)
            do {
                guard try FileStatus.of(temp)?.isRegular == true else { continue }
                let manifest = try Manifest.read(temp)
                guard manifest.name == gzName, manifest.verified else {
                    throw AbathurError(.damagedBackup, temp, "names \(manifest.name), or its checks did not pass")
                }
                guard let status = try FileStatus.of(gz), status.isRegular, status.size == manifest.gz.bytes,
                      try GzipFile.sha256(of: gz).hex == manifest.gz.sha256 else {
                    throw AbathurError(.damagedBackup, gz, "does not match the temp manifest \(name) (size or sha256)")
                }
                try SafeFiles.link(temp, as: Paths.join(directory, finalManifest))
                try SafeFiles.syncDirectory(directory)
                try SafeFiles.remove(temp)
                recovery.finished.append(gzName)
            } catch {
                recovery.problems.append("\(gz): incomplete backup; cannot finish its publish: \(error)")
            }
        }
        recovery.swept = SafeFiles.sweepTemps(in: directory)
        do {
            // Stale when a complete backup is missing from it, or it lists a file that is
            // gone (a kill during retention). A backup that is listed but no longer matches
            // its manifest stays listed: `sha256sum -c` is how standard tools see the damage.
            let catalog = try scan(directory)
            let path = Paths.join(directory, sumsName)
            let text = (try? TextFile.readBytes(path, limit: 64 << 20)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let listed = Set(text.split(separator: "\n").compactMap { line in line.firstRange(of: "  ").map { String(line[$0.upperBound...]) } })
            let missing = catalog.complete.contains { !listed.contains($0.fileName) }
            let gone = try listed.contains { try FileStatus.of(Paths.join(directory, Paths.basename($0))) == nil }
            if missing || gone {
                try SafeFiles.writeAtomically(sums(of: catalog), to: path)
                recovery.sumsRewritten = true
            }
        } catch {
            recovery.problems.append("cannot bring \(sumsName) up to date: \(error)")
        }
        return recovery
    }

    /// True for a temp manifest (`.abathur-tmp-PID-HEX-NAME.db.gz.json`) whose `.gz` has its
    /// final name while its manifest has none: what a kill between the two links of a publish
    /// leaves, and what `recover` needs to finish it.
    public static func isPendingManifest(_ tempName: String, in directory: String) -> Bool {
        guard tempName.hasPrefix(SafeFiles.tempPrefix) else { return false }
        let fields = tempName.dropFirst(SafeFiles.tempPrefix.count).split(separator: "-", maxSplits: 2)
        guard fields.count == 3, fields[2].hasSuffix(BackupName.suffix + BackupName.manifestSuffix) else { return false }
        let finalManifest = String(fields[2])
        let gzName = String(finalManifest.dropLast(BackupName.manifestSuffix.count))
        guard BackupName(fileName: gzName) != nil else { return false }
        do {
            guard try FileStatus.of(Paths.join(directory, gzName))?.isRegular == true else { return false }
            return try FileStatus.of(Paths.join(directory, finalManifest)) == nil
        } catch {
            return false
        }
    }
}
