/// The start of every run of every tool (issue 9, item 8): the temp files of runs that are
/// gone are removed from every directory any of our tools writes temp files to, whether or
/// not this run will write there, so a killed integrity run's inflated copy in `temp_dir`
/// goes with the next `abathur-backup status` as well as with the next integrity run.
///
/// No lock is needed (`SafeFiles.sweepTemps`: only names whose pid is gone are touched).
/// In the backup directory a temp manifest that can still finish an interrupted publish is
/// spared: only a run holding the lock finishes it (`Catalog.recover`), and sweeps it after.
public enum TempSweep {
    /// A directory temp files are swept from; `directories` false for one someone else owns
    /// (the database's), where only regular files are ours to remove.
    public struct Place: Sendable {
        public var directory: String
        public var directories: Bool
    }

    /// Every directory any of our tools writes temp files to, each once.
    public static func places(_ settings: Settings, metricsFile: String?) -> [Place] {
        let backupDir = settings.string(.backupDir)
        let incidents = settings.string(.incidentDir)
        let database = settings.string(.database)
        let prometheus = settings.string(.prometheusDir)
        var places: [Place] = []
        if !settings.string(.tempDir).isEmpty { places.append(Place(directory: settings.string(.tempDir), directories: true)) }
        if !backupDir.isEmpty {
            places.append(Place(directory: backupDir, directories: true))
            places.append(Place(directory: Paths.join(backupDir, Catalog.safetyDirName), directories: true))
        }
        if !incidents.isEmpty {
            places.append(Place(directory: incidents, directories: true))
        } else if !backupDir.isEmpty {
            places.append(Place(directory: Paths.join(backupDir, Catalog.incidentDirName), directories: true))
        }
        // Directories someone else owns: regular files only.
        if !database.isEmpty { places.append(Place(directory: Paths.directory(of: database), directories: false)) }
        if !prometheus.isEmpty { places.append(Place(directory: prometheus, directories: false)) }
        if let metricsFile { places.append(Place(directory: Paths.directory(of: metricsFile), directories: false)) }
        var seen: Set<String> = []
        return places.filter { seen.insert($0.directory).inserted }
    }

    /// A temp manifest in the backup directory that can still finish an interrupted publish.
    static func pending(_ place: Place, _ settings: Settings) -> (String) -> Bool {
        let backupDir = settings.string(.backupDir)
        return { name in place.directory == backupDir && Catalog.isPendingManifest(name, in: backupDir) }
    }

    /// Sweeps, best effort (a missing or unreadable directory is skipped); returns one line
    /// per directory where something was removed.
    public static func atStart(_ settings: Settings, metricsFile: String?) -> [String] {
        var lines: [String] = []
        for place in places(settings, metricsFile: metricsFile) {
            let swept = SafeFiles.sweepTemps(in: place.directory, directories: place.directories, keep: pending(place, settings))
            if !swept.isEmpty {
                lines.append("swept \(swept.count) stale temp file(s) of killed runs from \(place.directory): \(swept.joined(separator: " "))")
            }
        }
        return lines
    }

    /// What a sweep would remove now, by directory (`abathur-diskcheck`, which reports them
    /// before its `--fix` removes them).
    public static func stale(_ settings: Settings) -> [(place: Place, temps: [SafeFiles.StaleTemp])] {
        places(settings, metricsFile: nil).map { place in
            (place, SafeFiles.staleTemps(in: place.directory, directories: place.directories, keep: pending(place, settings)))
        }.filter { !$0.temps.isEmpty }
    }
}
