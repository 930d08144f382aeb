#if canImport(Glibc)
import Glibc
#endif

/// Is the service healthy again after a restore? Either an HTTP GET of a URL that must answer
/// 2xx (SPEC.md default `http://localhost:8000/health`), or a command that must exit 0; tried
/// up to `retries` times, `interval` apart, each attempt limited to `timeout`.
public struct HealthCheck: Sendable {
    public enum Probe: Sendable, Equatable {
        case url(HTTPURL)
        case command([String])
    }

    public var probe: Probe
    public var timeout: Double
    public var retries: Int
    public var interval: Double

    public struct Outcome: Sendable, Encodable {
        public var healthy: Bool
        public var attempts: Int
        /// What the last attempt saw: "HTTP 200", "HTTP 500", "connection refused", "exit 1: ...".
        public var detail: String
        public var target: String
    }

    /// From the settings; nil when neither `health_command` nor `health_url` is set.
    public init?(settings: Settings) throws {
        // Every health setting is checked, used or not, so a bad value is found before a restore.
        let command = try settings.value(.healthCommand)
        let url = settings.string(.healthURL)
        timeout = try settings.value(.healthTimeout)
        retries = try settings.value(.healthRetries)
        interval = try settings.value(.healthInterval)
        if !command.isEmpty {
            probe = .command(command)
        } else if !url.isEmpty {
            guard let parsed = HTTPURL(url) else {
                throw AbathurError.usage("health_url=\"\(url)\" (from \(settings[.healthURL].source)): expected http://HOST[:PORT]/PATH (for https, set health_command, e.g. curl -fsS URL)")
            }
            probe = .url(parsed)
        } else {
            return nil
        }
    }

    public var target: String {
        switch probe {
        case .url(let url): return url.text
        case .command(let argv): return argv.joined(separator: " ")
        }
    }

    public func run(log: (String) -> Void = { _ in }) -> Outcome {
        var detail = ""
        for attempt in 1...retries {
            let healthy: Bool
            (healthy, detail) = once()
            if healthy { return Outcome(healthy: true, attempts: attempt, detail: detail, target: target) }
            log("health check \(attempt)/\(retries): \(target): \(detail)")
            if attempt < retries { Clock.sleep(seconds: interval) }
        }
        return Outcome(healthy: false, attempts: retries, detail: detail, target: target)
    }

    func once() -> (Bool, String) {
        switch probe {
        case .url(let url):
            do {
                let status = try url.get(timeout: timeout)
                return ((200...299).contains(status), "HTTP \(status)")
            } catch {
                return (false, "\(error)")
            }
        case .command(let argv):
            do {
                let outcome = try Subprocess.run(argv, timeout: timeout)
                if outcome.timedOut { return (false, "timed out after \(Duration.describe(timeout))") }
                let line = outcome.lastLine
                return (outcome.succeeded, "exit \(outcome.status)" + (line.isEmpty ? "" : ": \(line)"))
            } catch {
                return (false, "\(error)")
            }
        }
    }
}

/// `http://host[:port][/path]`, enough for a health endpoint.
public struct HTTPURL: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    public var path: String
    public var text: String

    public init?(_ text: String) {
        guard text.lowercased().hasPrefix("http://") else { return nil }
        var rest = Substring(text.dropFirst("http://".count))
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var authority = rest
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            rest = rest[slash...]
        } else {
            rest = "/"
        }
        var host = authority
        var port: UInt16 = 80
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { guard let p = UInt16(after.dropFirst()) else { return nil }; port = p }
            else if !after.isEmpty { return nil }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let p = UInt16(authority[authority.index(after: colon)...]) else { return nil }
            port = p
        }
        guard !host.isEmpty, !host.contains("@") else { return nil }
        self.host = String(host)
        self.port = port
        self.path = String(rest)
        self.text = text
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One `GET`, HTTP/1.0, `Connection: close`; returns the status code.
    func get(timeout: Double) throws -> Int {
        let deadline = Clock.monotonicSeconds() + timeout
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var lastError = "no address for \(host)"
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let info = node {
            node = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = "socket: \(Errno.current)"; continue }
            defer { close(fd) }
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = "\(Errno.current)"
                continue
            }
            guard try wait(fd, for: Int16(POLLOUT), until: deadline) else { lastError = "timed out connecting"; continue }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            guard soError == 0 else { lastError = "\(Errno(soError))"; continue }
            let hostHeader = (host.contains(":") ? "[\(host)]" : host) + (port == 80 ? "" : ":\(port)")
            let request = Array("GET \(path) HTTP/1.0\r\nHost: \(hostHeader)\r\nUser-Agent: abathur-restore\r\nConnection: close\r\n\r\n".utf8)
            var sent = 0
            while sent < request.count {
                guard try wait(fd, for: Int16(POLLOUT), until: deadline) else { throw Failure(description: "timed out sending") }
                let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
                if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; throw Failure(description: "\(Errno.current)") }
                sent += n
            }
            var response: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1024)
            while !response.contains(UInt8(ascii: "\n")) && response.count < 8192 {
                guard try wait(fd, for: Int16(POLLIN), until: deadline) else { throw Failure(description: "timed out waiting for the response") }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; throw Failure(description: "\(Errno.current)") }
                if n == 0 { break }
                response += buffer[0..<n]
            }
            let line = String(decoding: response.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            let parts = line.split(separator: " ")
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
                throw Failure(description: line.isEmpty ? "no HTTP response" : "not an HTTP response: \(line.prefix(60))")
            }
            return status
        }
        throw Failure(description: lastError)
    }

    private func wait(_ fd: Int32, for events: Int16, until deadline: Double) throws -> Bool {
        while true {
            let remaining = deadline - Clock.monotonicSeconds()
            if remaining <= 0 { return false }
            var poller = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, remaining * 1000)))
            if ready < 0 { if errno == EINTR { continue }; throw Failure(description: "\(Errno.current)") }
            if ready > 0 { return true }
        }
    }
}
