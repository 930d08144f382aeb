/// node_exporter textfile metrics, written atomically (temp file, rename) so the collector
/// never reads half a file.
public struct PrometheusMetrics: Sendable {
    public struct Sample: Sendable {
        var name: String
        var help: String
        var type: String
        var labels: [(String, String)]
        var value: Double
    }

    private var samples: [Sample] = []

    public init() {}

    public mutating func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
        samples.append(Sample(name: name, help: help, type: "gauge", labels: labels, value: value))
    }

    public func rendered() -> String {
        var text = ""
        var described: Set<String> = []
        for sample in samples {
            if described.insert(sample.name).inserted {
                text += "# HELP \(sample.name) \(sample.help)\n# TYPE \(sample.name) \(sample.type)\n"
            }
            let labels = sample.labels.isEmpty ? "" : "{" + sample.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
            let value = sample.value == sample.value.rounded() && abs(sample.value) < 1e15
                ? String(Int64(sample.value)) : String(sample.value)
            text += "\(sample.name)\(labels) \(value)\n"
        }
        return text
    }

    func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    public func write(to path: String) throws {
        try SafeFiles.writeAtomically(Array(rendered().utf8), to: path)
    }
}
