/// The version every tool reports and every manifest records.
public enum AbathurVersion {
    public static let current = "0.1.0"
}
