/// The start of every run of every tool (issue 9, item 8): the temp files of runs that are
/// gone are removed from every directory any of our tools writes temp files to, whether or
/// not this run will write there, so a killed integrity run's inflated copy in `temp_dir`
/// goes with the next `abathur-backup status` as well as with the next integrity run.
///
/// No lock is needed (`SafeFiles.sweepTemps`: only names whose pid is gone are touched).
/// In the backup directory a temp manifest that can still finish an interrupted publish is
/// spared: only a run holding the lock finishes it (`Catalog.recover`), and sweeps it after.
public enum TempSweep {
    /// Sweeps, best effort (a missing or unreadable directory is skipped); returns one line
    /// per directory where something was removed.
    public static func atStart(_ settings: Settings, metricsFile: String?) -> [String] {
        let backupDir = settings.string(.backupDir)
        let incidents = settings.string(.incidentDir)
        let database = settings.string(.database)
        let prometheus = settings.string(.prometheusDir)
        var places: [(directory: String, directories: Bool)] = []
        if !settings.string(.tempDir).isEmpty { places.append((settings.string(.tempDir), true)) }
        if !backupDir.isEmpty {
            places.append((backupDir, true))
            places.append((Paths.join(backupDir, Catalog.safetyDirName), true))
        }
        if !incidents.isEmpty {
            places.append((incidents, true))
        } else if !backupDir.isEmpty {
            places.append((Paths.join(backupDir, Catalog.incidentDirName), true))
        }
        // Directories someone else owns: regular files only.
        if !database.isEmpty { places.append((Paths.directory(of: database), false)) }
        if !prometheus.isEmpty { places.append((prometheus, false)) }
        if let metricsFile { places.append((Paths.directory(of: metricsFile), false)) }

        var lines: [String] = []
        var seen: Set<String> = []
        for place in places where seen.insert(place.directory).inserted {
            let swept = SafeFiles.sweepTemps(in: place.directory, directories: place.directories) { name in
                place.directory == backupDir && Catalog.isPendingManifest(name, in: backupDir)
            }
            if !swept.isEmpty {
                lines.append("swept \(swept.count) stale temp file(s) of killed runs from \(place.directory): \(swept.joined(separator: " "))")
            }
        }
        return lines
    }
}
