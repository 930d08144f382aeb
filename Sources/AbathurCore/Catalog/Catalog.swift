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
            if [sumsName, lockName, SampleState.fileName, safetyDirName, incidentDirName].contains(file) || file.hasPrefix(SafeFiles.tempPrefix) { continue }
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
        let catalog = try scan(directory)
        var text = ""
        for entry in catalog.complete.reversed() {
            text += "\(entry.manifest!.gz.sha256)  \(entry.fileName)\n"
        }
        try SafeFiles.writeAtomically(Array(text.utf8), to: Paths.join(directory, sumsName))
    }
}
