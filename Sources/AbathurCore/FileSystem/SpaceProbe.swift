#if canImport(Glibc)
import Glibc
#endif

/// Tells whether a failed write was a lack of space, when the error itself cannot be
/// trusted to say so (SQLite reports RLIMIT_FSIZE as a plain write error).
public enum SpaceProbe {
    public static func diagnose(file: String, directory: String) -> String? {
        var limit = rlimit()
        let size = (try? FileStatus.of(file))??.size ?? 0
        if getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
           size + 65536 >= Int64(clamping: limit.rlim_cur) {
            return "the file size limit (RLIMIT_FSIZE, \(limit.rlim_cur) bytes) was reached"
        }
        if let free = try? Filesystem.of(directory).freeBytes, free < SpaceBudget.margin {
            return "the filesystem is full (\(free) bytes free)"
        }
        return nil
    }
}
