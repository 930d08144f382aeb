/// How fast the database grows, from the sizes its backups' manifests record, and when, at
/// that rate, its filesystem is full. The rate is the least-squares slope over the backups of
/// the last `window` (30 days), so one vacuum or one burst does not decide it alone; it needs
/// two backups at least an hour apart.
public struct Growth: Sendable, Encodable, Equatable {
    public struct Point: Sendable, Encodable, Equatable {
        public var backup: String
        public var created: String
        public var createdUnix: Int64
        public var databaseBytes: Int64
    }

    public static let window: Int64 = 30 * 86400
    public static let minimumSpan: Int64 = 3600

    /// The backups the rate is computed over, oldest first.
    public var points: [Point]
    /// Nil when there is not enough history.
    public var bytesPerDay: Double?
    /// Days until the database's filesystem has no byte free at this rate; nil when it does
    /// not grow (or the rate is unknown).
    public var daysUntilFull: Double?
    public var detail: String

    /// `manifests` in any order; `freeBytes` is what the database's filesystem has free.
    public static func estimate(_ manifests: [Manifest], now: Double, freeBytes: Int64) -> Growth {
        let recent = manifests.filter { Double($0.createdUnix) >= now - Double(window) && Double($0.createdUnix) <= now }
            .sorted { ($0.createdUnix, $0.name) < ($1.createdUnix, $1.name) }
        let points = recent.map { Point(backup: $0.name, created: $0.created, createdUnix: $0.createdUnix, databaseBytes: $0.database.bytes) }
        guard let first = points.first, let last = points.last, last.createdUnix - first.createdUnix >= minimumSpan else {
            return Growth(points: points, bytesPerDay: nil, daysUntilFull: nil,
                          detail: "not enough history: needs two backups at least an hour apart in the last 30 days (has \(points.count))")
        }
        let xs = points.map { Double($0.createdUnix - first.createdUnix) / 86400 }
        let ys = points.map { Double($0.databaseBytes) }
        let n = Double(points.count)
        let meanX = xs.reduce(0, +) / n, meanY = ys.reduce(0, +) / n
        let covariance = zip(xs, ys).map { ($0 - meanX) * ($1 - meanY) }.reduce(0, +)
        let variance = xs.map { ($0 - meanX) * ($0 - meanX) }.reduce(0, +)
        let slope = variance > 0 ? covariance / variance : 0
        let span = Duration.describe(Double(last.createdUnix - first.createdUnix))
        guard slope > 0 else {
            return Growth(points: points, bytesPerDay: slope, daysUntilFull: nil,
                          detail: "not growing over \(points.count) backups in \(span)")
        }
        let days = Double(max(0, freeBytes)) / slope
        return Growth(points: points, bytesPerDay: slope, daysUntilFull: days,
                      detail: "\(Bytes.describe(Int64(slope.rounded())))/day over \(points.count) backups in \(span): full in \(describeDays(days))")
    }

    static func describeDays(_ days: Double) -> String {
        days < 1 ? "\(Int((days * 24).rounded())) hours" : days < 1000 ? "\(Int(days.rounded(.down))) days" : "more than 1000 days"
    }
}
