#if canImport(Glibc)
import Glibc
#endif

/// Where SQLite's unix VFS puts its temp files (a VACUUM's copy of the database among them,
/// FACTS.md 13): the first of `SQLITE_TMPDIR`, `TMPDIR`, `/var/tmp`, `/usr/tmp`, `/tmp` and
/// `.` that is a directory this process may write into (sqlite.org/tempfiles.html).
public enum SQLiteTempDirectory {
    public static func resolve(environment: [String: String]? = nil) -> String {
        func variable(_ name: String) -> String? {
            if let environment { return environment[name] }
            return getenv(name).map { String(cString: $0) }
        }
        let candidates = [variable("SQLITE_TMPDIR"), variable("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"].compactMap { $0 }.filter { !$0.isEmpty }
        for candidate in candidates {
            var st = stat()
            if stat(candidate, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, access(candidate, W_OK | X_OK) == 0 { return candidate }
        }
        return "."
    }
}
