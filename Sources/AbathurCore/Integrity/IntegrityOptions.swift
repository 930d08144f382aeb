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
        quick = try settings.value(.quickCheck)
        maxErrors = try settings.value(.maxErrors)
        expectation = try SchemaExpectation(settings: settings)
        expectUserVersion = try settings.value(.expectUserVersion)
        shrinkWarning = try settings.value(.shrinkWarning)
        busyTimeoutMs = try settings.value(.busyTimeoutMs)
        tempDirectory = settings.string(.tempDir)
    }
}
