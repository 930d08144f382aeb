/// What `abathur-integrity` checks against.
public struct IntegrityOptions: Sendable {
    public var quick: Bool
    /// integrity_check messages kept (SQLite's default of 100 hides the rest).
    public var maxErrors: Int
    public var expectation: SchemaExpectation
    public var expectUserVersion: Int64?
    /// A table that shrank by more than this fraction since the newest backup is a warning.
    public var shrinkWarning: Double
    public var busyTimeoutMs: Int
    public var tempDirectory: String

    public init(settings: Settings) throws {
        quick = try settings.boolean(.quickCheck)
        maxErrors = try settings.integer(.maxErrors, in: 1...100_000_000)
        expectation = try SchemaExpectation(settings: settings)
        expectUserVersion = try settings.optionalInteger(.expectUserVersion)
        shrinkWarning = try settings.fraction(.shrinkWarning)
        busyTimeoutMs = try settings.integer(.busyTimeoutMs, in: 0...3_600_000)
        tempDirectory = settings.string(.tempDir)
    }
}
