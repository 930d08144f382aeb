#if canImport(Glibc)
import Glibc
#endif

/// Wall and monotonic time, from libc.
public enum Clock {
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Seconds since the epoch, UTC; `ABATHUR_NOW` overrides it in debug builds so tests can
    /// take backups "on" chosen days.
    public static func now() -> Double {
        #if ABATHUR_FAULT_INJECTION
        if let text = getenv("ABATHUR_NOW"), let value = Double(String(cString: text)) { return value }
        #endif
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func sleep(seconds: Double) {
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    /// The broken-down UTC time of `seconds` since the epoch.
    public static func utc(_ seconds: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        return (Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// Seconds since the epoch for a UTC calendar time (no time-zone lookup involved).
    public static func epoch(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int64 {
        // Days from civil, Howard Hinnant's algorithm.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = Int64(era) * 146097 + Int64(doe) - 719468
        return days * 86400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// `2026-11-27T13:00:00Z`.
    public static func iso8601(_ seconds: Int64) -> String {
        let t = utc(seconds)
        return "\(pad(t.year, 4))-\(pad(t.month))-\(pad(t.day))T\(pad(t.hour)):\(pad(t.minute)):\(pad(t.second))Z"
    }

    /// A moment as an operator gives it (`--before`): `@UNIXTIME`, or what `parseISO8601`
    /// reads.
    public static func parseMoment(_ text: String) -> Int64? {
        if text.hasPrefix("@") { return Int64(text.dropFirst()) }
        return parseISO8601(text)
    }

    /// Parses `2026-11-27T13:00:00Z`, `2026-11-27 13:00:00` (UTC) or `2026-11-27`.
    public static func parseISO8601(_ text: String) -> Int64? {
        let digits = text.split(whereSeparator: { "-T:Z ".contains($0) }).map { Int($0) }
        guard !digits.contains(where: { $0 == nil }) else { return nil }
        let n = digits.map { $0! }
        guard n.count == 3 || n.count == 6 else { return nil }
        let (h, mi, s) = n.count == 6 ? (n[3], n[4], n[5]) : (0, 0, 0)
        let monthDays = [31, n[0] % 4 == 0 && (n[0] % 100 != 0 || n[0] % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1970...9999).contains(n[0]), (1...12).contains(n[1]), (1...monthDays[n[1] - 1]).contains(n[2]),
              (0...23).contains(h), (0...59).contains(mi), (0...60).contains(s) else { return nil }
        return epoch(year: n[0], month: n[1], day: n[2], hour: h, minute: mi, second: s)
    }

    static func pad(_ value: Int, _ width: Int = 2) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
