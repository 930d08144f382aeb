extension AbathurError {
    /// A failed write to stdout: an output error (exit 8) whatever the errno, since a full
    /// /dev/full is not our disk running out of space.
    public static func stdout(_ error: any Error) -> AbathurError {
        let problem = (error as? AbathurError)?.message ?? "\(error)"
        let closed = StandardDescriptors.wasClosed(1) ? " (stdout was closed)" : ""
        return AbathurError(.output, "stdout", problem + closed)
    }
}
