#if canImport(Glibc)
import Glibc
#endif

/// What restores leave behind, and how long it stays (SPEC.md, "Settings added with the
/// emergency tools"): safety copies (`SAFETY_ROOT/STAMP-TAG/`: `BACKUP_DIR/safety/` or
/// `DBDIR/.abathur-safety/`), aside directories (`DBDIR/.abathur-aside-STAMP/`) and incident
/// records (`INCIDENT_DIR/STAMP-KIND.json` and `.md`). Of each kind in each place the
/// `safety_keep` newest stay, then everything younger than `safety_max_age`; the newest
/// safety copy always stays. The rule is the one backups are pruned by (`DatedRetention`).
///
/// Only what carries our names is ever removed, checked with `lstat`: a directory (never a
/// symlink) that holds regular files only, or a regular file. Anything else is left alone
/// and not counted. Call `prune` under the locks of the places it removes from (restore
/// does, at its end; diskcheck `--fix` will); `scan` only reads (status).
public struct SafetyRetention: Sendable {
    public var keep: Int
    public var maxAgeSeconds: Int64

    public init(keep: Int, maxAgeSeconds: Int64) {
        self.keep = keep
        self.maxAgeSeconds = maxAgeSeconds
    }

    public init(settings: Settings) throws {
        keep = try settings.value(.safetyKeep)
        maxAgeSeconds = Int64(try settings.value(.safetyMaxAge))
    }

    public enum Kind: String, Sendable, Encodable, CaseIterable {
        case safetyCopy = "safety copy"
        case asideDirectory = "aside directory"
        case incidentRecord = "incident record"
        /// walfix's copies of a damaged WAL: evidence, counted (diskcheck) but never pruned.
        case forensicCopy = "forensic copy"
    }

    /// One safety copy, aside directory or incident record: the paths that make it up.
    public struct Item: Sendable, Equatable {
        public var kind: Kind
        /// The directory, or the incident record's path without `.json`/`.md`.
        public var path: String
        public var createdUnix: Int64
        /// Its files (regular files only), and their bytes.
        public var files: [String]
        public var bytes: Int64
    }

    /// Where one run's leftovers are: `safetyRoots` (each holds safety copies), the database's
    /// directory (aside directories) and the incident directory.
    public struct Places: Sendable {
        public var safetyRoots: [String]
        public var databaseDirectory: String
        public var incidentDirectory: String
        /// Where walfix's forensic copies are (counted, never pruned).
        public var forensicRoots: [String]

        public init(safetyRoots: [String], databaseDirectory: String, incidentDirectory: String, forensicRoots: [String] = []) {
            self.safetyRoots = safetyRoots
            self.databaseDirectory = databaseDirectory
            self.incidentDirectory = incidentDirectory
            self.forensicRoots = forensicRoots
        }

        /// Every place the settings can put them: both safety roots.
        public init(settings: Settings) {
            let backupDir = settings.string(.backupDir)
            let databaseDirectory = Paths.directory(of: settings.string(.database))
            let incidents = settings.string(.incidentDir)
            self.init(safetyRoots: [Paths.join(backupDir, Catalog.safetyDirName), Paths.join(databaseDirectory, SafetyCopy.besideDatabaseDirName)],
                      databaseDirectory: databaseDirectory,
                      incidentDirectory: incidents.isEmpty ? Paths.join(backupDir, Catalog.incidentDirName) : incidents,
                      forensicRoots: [Paths.join(backupDir, WALRepair.forensicDirName), Paths.join(databaseDirectory, WALRepair.forensicBesideDatabaseDirName)])
        }
    }

    // MARK: finding them

    /// Every item in `places`, in groups that are kept separately (one per safety root, the
    /// aside directories, the incident records), each newest first. A place that does not
    /// exist holds nothing.
    public static func scan(_ places: Places) throws -> [[Item]] {
        var groups: [[Item]] = []
        for root in places.safetyRoots {
            groups.append(try directories(in: root, kind: .safetyCopy) { stampAndTag($0) })
        }
        groups.append(try directories(in: places.databaseDirectory, kind: .asideDirectory) { name in
            guard name.hasPrefix(DatabaseSwap.asidePrefix) else { return nil }
            return stamp(String(name.dropFirst(DatabaseSwap.asidePrefix.count)), suffix: { sequence($0) })
        })
        groups.append(try incidentRecords(in: places.incidentDirectory))
        return groups.map { $0.sorted { ($0.createdUnix, $0.path) > ($1.createdUnix, $1.path) } }
    }

    /// walfix's forensic copies (`BACKUP_DIR/forensic/STAMP-walfix/`, or `.abathur-forensic/`
    /// beside the database), newest first. Never part of `scan`: nothing prunes them.
    public static func forensicCopies(_ places: Places) throws -> [Item] {
        var items: [Item] = []
        for root in places.forensicRoots { items += try directories(in: root, kind: .forensicCopy) { stampAndTag($0) } }
        return items.sorted { ($0.createdUnix, $0.path) > ($1.createdUnix, $1.path) }
    }

    /// Directories in `parent` whose name `created` dates, holding regular files only.
    static func directories(in parent: String, kind: Kind, created: (String) -> Int64?) throws -> [Item] {
        guard try FileStatus.of(parent)?.isDirectory == true else { return [] }
        var items: [Item] = []
        for name in try SafeFiles.listDirectory(parent) {
            guard let time = created(name) else { continue }
            let path = Paths.join(parent, name)
            guard try FileStatus.of(path)?.isDirectory == true else { continue }
            var files: [String] = [], bytes: Int64 = 0, onlyFiles = true
            for entry in try SafeFiles.listDirectory(path) {
                guard let status = try FileStatus.of(Paths.join(path, entry)), status.isRegular else { onlyFiles = false; break }
                files.append(Paths.join(path, entry))
                bytes += status.size
            }
            if onlyFiles { items.append(Item(kind: kind, path: path, createdUnix: time, files: files, bytes: bytes)) }
        }
        return items
    }

    /// `STAMP-KIND.json` and `STAMP-KIND.md` in the incident directory, as one item each.
    static func incidentRecords(in directory: String) throws -> [Item] {
        guard try FileStatus.of(directory)?.isDirectory == true else { return [] }
        var byBase: [String: Item] = [:]
        for name in try SafeFiles.listDirectory(directory) {
            guard let ext = [".json", ".md"].first(where: { name.hasSuffix($0) }) else { continue }
            let base = String(name.dropLast(ext.count))
            guard let time = stampAndTag(base), let status = try FileStatus.of(Paths.join(directory, name)), status.isRegular else { continue }
            var item = byBase[base] ?? Item(kind: .incidentRecord, path: Paths.join(directory, base), createdUnix: time, files: [], bytes: 0)
            item.files.append(Paths.join(directory, name))
            item.bytes += status.size
            byBase[base] = item
        }
        return Array(byBase.values)
    }

    /// `2026-11-27_13-00-00-restore` or `…-rolled-back-restore_2`: the time, or nil when the
    /// name is not one of ours.
    static func stampAndTag(_ name: String) -> Int64? {
        stamp(name) { rest in
            guard rest.hasPrefix("-") else { return false }
            var tag = rest.dropFirst()
            if let underscore = tag.lastIndex(of: "_") {
                guard sequence(tag[underscore...]) else { return false }
                tag = tag[..<underscore]
            }
            return !tag.isEmpty && tag.allSatisfy { ("a"..."z").contains($0) || $0 == "-" }
        }
    }

    /// `""` or `_N`: the suffix that keeps two names of the same second apart.
    static func sequence(_ rest: Substring) -> Bool {
        rest.isEmpty || (rest.hasPrefix("_") && rest.count > 1 && rest.dropFirst().allSatisfy { ("0"..."9").contains($0) })
    }

    /// The time of a name that starts with `Clock.fileStamp` (`2026-11-27_13-00-00`) and whose
    /// rest `suffix` accepts.
    static func stamp(_ name: String, suffix: (Substring) -> Bool) -> Int64? {
        let stampLength = 19
        guard name.count >= stampLength, suffix(name.dropFirst(stampLength)) else { return nil }
        let text = name.prefix(stampLength)
        let parts = text.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].count == 8 else { return nil }
        return Clock.parseISO8601("\(parts[0]) \(String(parts[1].map { $0 == "-" ? ":" : $0 }))")
    }

    // MARK: deciding and removing

    /// The rule for one group: the newest safety copy stays whatever `safety_keep` says.
    func rule(for kind: Kind) -> DatedRetention {
        let floor = kind == .safetyCopy ? max(keep, 1) : keep
        return DatedRetention(keepNewest: floor, maxAgeSeconds: maxAgeSeconds,
                              newestRule: kind == .safetyCopy && keep == 0 ? "the newest safety copy" : "one of the \(floor) newest",
                              age: Duration.describe(Double(maxAgeSeconds)))
    }

    /// Decides for every item of every group.
    public func plan(_ groups: [[Item]], now: Double) -> [DatedRetention.Decision<Item>] {
        groups.flatMap { group in
            group.first.map { rule(for: $0.kind).plan(group, now: now, exemption: { _ in nil }, created: \.createdUnix,
                                       countsTowardFloor: { _ in true }, removal: { _ in nil }) } ?? []
        }
    }

    /// Removes what `plan` marked (each file, then its directory) and returns their paths.
    /// An item that changed since it was scanned (a new entry, one that is no longer a
    /// regular file) is left as it is.
    public func apply(_ decisions: [DatedRetention.Decision<Item>]) throws -> [String] {
        var removed: [String] = []
        var touched = Set<String>()
        for decision in decisions where !decision.keep {
            let item = decision.item
            if item.kind == .incidentRecord {
                for file in item.files where try FileStatus.of(file)?.isRegular == true { try SafeFiles.remove(file) }
                touched.insert(Paths.directory(of: item.path))
            } else {
                let now = try SafeFiles.listDirectory(item.path).map { Paths.join(item.path, $0) }
                guard Set(now) == Set(item.files), try now.allSatisfy({ try FileStatus.of($0)?.isRegular == true }) else { continue }
                for file in item.files { try SafeFiles.remove(file) }
                guard rmdir(item.path) == 0 else { throw AbathurError(Errno.current.kind, item.path, "cannot remove directory: \(Errno.current)") }
                touched.insert(Paths.directory(of: item.path))
            }
            removed.append(item.path)
        }
        for directory in touched.sorted() { try SafeFiles.syncDirectory(directory) }
        return removed
    }

    /// Scans, decides and removes: what a run that writes these places calls at its end.
    public func prune(_ places: Places, now: Double = Clock.now()) throws -> [String] {
        try apply(plan(try Self.scan(places), now: now))
    }

    /// Count and bytes of each kind, for `abathur-backup status`.
    public struct Usage: Sendable, Encodable, Equatable {
        public var count = 0
        public var bytes: Int64 = 0

        public init(count: Int = 0, bytes: Int64 = 0) {
            self.count = count
            self.bytes = bytes
        }
    }

    public static func usage(_ places: Places) throws -> [Kind: Usage] {
        var usage: [Kind: Usage] = [:]
        for item in try scan(places).joined() {
            usage[item.kind, default: Usage()].count += 1
            usage[item.kind, default: Usage()].bytes += item.bytes
        }
        return usage
    }
}
