// abathur-demo: makes abathur-shaped demo databases and drives them, for `make demo`, the
// tests and the benchmarks. It is a development tool and is not shipped in the package.
//
//   abathur-demo create DB [--rows N | --size-mb M]   11 tables (the 9 core ones and milestone 3's
//                                                     document_embeddings, document_embeddings_data),
//                                                     36 indexes (41 with SQLite's automatic ones),
//                                                     WAL mode; the same arguments make the same
//                                                     file, byte for byte (demo_blob, below)
//   abathur-demo write DB [--seconds S] [--rate TPS] [--say-ready]
//                                                     a writer that keeps invariants; with
//                                                     --say-ready, "ready" on stderr after
//                                                     its first commit
//   abathur-demo check DB [--min-seq N]               exit 0 when the invariants hold
//   abathur-demo seq DB                               print the writer's sequence number
import AbathurCore
import CSQLite
#if canImport(Glibc)
import Glibc
#endif

let totalBudget: Int64 = 1_000_000

func fail(_ message: String) -> Never {
    let line = Array("abathur-demo: error: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
    exit(1)
}

func option(_ name: String, in args: [String]) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

let schema = """
CREATE TABLE agents(id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, model TEXT,
  budget INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT);
CREATE TABLE sessions(id TEXT PRIMARY KEY, agent_id TEXT REFERENCES agents(id), status TEXT NOT NULL,
  started_at TEXT NOT NULL, ended_at TEXT);
CREATE TABLE tasks(id INTEGER PRIMARY KEY, agent_id TEXT REFERENCES agents(id), session_id TEXT REFERENCES sessions(id),
  parent_id INTEGER REFERENCES tasks(id), title TEXT NOT NULL, description TEXT, status TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 5, writer_seq INTEGER, created_at TEXT NOT NULL, updated_at TEXT, completed_at TEXT);
CREATE TABLE audit(id INTEGER PRIMARY KEY, task_id INTEGER REFERENCES tasks(id), agent_id TEXT REFERENCES agents(id),
  action TEXT NOT NULL, details TEXT, created_at TEXT NOT NULL);
CREATE TABLE checkpoints(id INTEGER PRIMARY KEY, task_id INTEGER REFERENCES tasks(id), session_id TEXT REFERENCES sessions(id),
  step INTEGER NOT NULL, data BLOB, created_at TEXT NOT NULL);
CREATE TABLE state(key TEXT PRIMARY KEY, value TEXT, updated_at TEXT);
CREATE TABLE metrics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, value REAL, labels TEXT,
  agent_id TEXT REFERENCES agents(id), recorded_at TEXT NOT NULL);
CREATE TABLE memory_entries(id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
  memory_type TEXT, session_id TEXT REFERENCES sessions(id), created_at TEXT NOT NULL, updated_at TEXT,
  UNIQUE(namespace, key));
CREATE TABLE document_index(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, title TEXT, content_hash TEXT,
  chunk_count INTEGER, indexed_at TEXT);
CREATE TABLE document_embeddings(id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL REFERENCES document_index(id),
  chunk INTEGER NOT NULL, model TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE document_embeddings_data(embedding_id INTEGER PRIMARY KEY REFERENCES document_embeddings(id),
  vector BLOB NOT NULL);
CREATE INDEX idx_agents_status ON agents(status);
CREATE INDEX idx_agents_name ON agents(name);
CREATE INDEX idx_agents_created ON agents(created_at);
CREATE INDEX idx_sessions_agent ON sessions(agent_id);
CREATE INDEX idx_sessions_status ON sessions(status);
CREATE INDEX idx_sessions_started ON sessions(started_at);
CREATE INDEX idx_tasks_agent ON tasks(agent_id);
CREATE INDEX idx_tasks_session ON tasks(session_id);
CREATE INDEX idx_tasks_parent ON tasks(parent_id);
CREATE INDEX idx_tasks_status ON tasks(status);
CREATE INDEX idx_tasks_priority ON tasks(priority, created_at);
CREATE INDEX idx_tasks_created ON tasks(created_at);
CREATE INDEX idx_tasks_seq ON tasks(writer_seq);
CREATE INDEX idx_tasks_status_priority ON tasks(status, priority);
CREATE INDEX idx_audit_task ON audit(task_id);
CREATE INDEX idx_audit_agent ON audit(agent_id);
CREATE INDEX idx_audit_action ON audit(action);
CREATE INDEX idx_audit_created ON audit(created_at);
CREATE INDEX idx_checkpoints_task ON checkpoints(task_id);
CREATE INDEX idx_checkpoints_session ON checkpoints(session_id);
CREATE INDEX idx_checkpoints_step ON checkpoints(task_id, step);
CREATE INDEX idx_state_updated ON state(updated_at);
CREATE INDEX idx_metrics_name ON metrics(name);
CREATE INDEX idx_metrics_agent ON metrics(agent_id);
CREATE INDEX idx_metrics_recorded ON metrics(recorded_at);
CREATE INDEX idx_metrics_name_time ON metrics(name, recorded_at);
CREATE INDEX idx_memory_namespace ON memory_entries(namespace);
CREATE INDEX idx_memory_session ON memory_entries(session_id);
CREATE INDEX idx_memory_type ON memory_entries(memory_type);
CREATE INDEX idx_memory_updated ON memory_entries(updated_at);
CREATE INDEX idx_document_hash ON document_index(content_hash);
CREATE INDEX idx_document_indexed ON document_index(indexed_at);
CREATE INDEX idx_document_title ON document_index(title);
CREATE INDEX idx_document_chunks ON document_index(chunk_count);
CREATE INDEX idx_document_embeddings_document ON document_embeddings(document_id, chunk);
CREATE INDEX idx_document_embeddings_model ON document_embeddings(model);
"""

/// SplitMix64 (Steele, Lea, Flood 2014): a seeded generator, the same numbers on every machine.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `demo_blob(N, STREAM, I)`: N bytes (0...65536) from SplitMix64 seeded by STREAM (0...65535)
/// and the row number I (0 ..< 2^48), `STREAM << 48 | I`: what `randomblob(N)` gave `create`
/// before, as incompressible, but the same bytes for the same arguments, so two databases made
/// with the same arguments are the same file. Each column that had random bytes has its own
/// STREAM, so no two columns repeat each other's bytes.
func demoBlob(_ context: OpaquePointer?, _ argc: Int32, _ argv: UnsafeMutablePointer<OpaquePointer?>?) {
    guard argc == 3, let argv else { return sqlite3_result_error(context, "demo_blob(N, STREAM, I): three arguments", -1) }
    let n = sqlite3_value_int64(argv[0]), stream = sqlite3_value_int64(argv[1]), row = sqlite3_value_int64(argv[2])
    guard (0...65536).contains(n), (0...65535).contains(stream), (0..<(Int64(1) << 48)).contains(row) else {
        return sqlite3_result_error(context, "demo_blob(N, STREAM, I): N in 0...65536, STREAM in 0...65535, I in 0..<2^48", -1)
    }
    // "sqlite3_result_blob64(C,V,N,D) ... If the 4th parameter ... is a pointer to a function,
    // then SQLite calls that function as the destructor for the [blob] when it has finished
    // using that result": the buffer is SQLite's from here on.
    let wordCount = max(1, (Int(n) + 7) / 8)
    guard let buffer = sqlite3_malloc64(UInt64(wordCount * 8)) else { return sqlite3_result_error_nomem(context) }
    var generator = SplitMix64(seed: UInt64(stream) << 48 | UInt64(row))
    let words = buffer.bindMemory(to: UInt64.self, capacity: wordCount)
    for k in 0..<wordCount { words[k] = generator.next().littleEndian }
    sqlite3_result_blob64(context, buffer, UInt64(n), sqlite3_free)
}

/// The connection `create` fills the database through. It has its own `sqlite3*`, because it
/// registers `demo_blob` (Connection keeps its handle to itself); closed in `deinit`.
final class CreateConnection {
    let handle: OpaquePointer

    init(path: String) {
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            fail("\(path): \(message)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        // SQLITE_DETERMINISTIC: "the function always gives the same output when the input
        // parameters are the same".
        guard sqlite3_create_function_v2(db, "demo_blob", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil, demoBlob, nil, nil, nil) == SQLITE_OK else {
            fail("\(path): cannot register demo_blob: \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    deinit { sqlite3_close_v2(handle) }

    func execute(_ sql: String) {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &message) == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            fail(text)
        }
    }

    func integer(_ sql: String) -> Int64 {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            fail("\(sql): \(String(cString: sqlite3_errmsg(handle)))")
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { fail("\(sql): \(String(cString: sqlite3_errmsg(handle)))") }
        return sqlite3_column_int64(statement, 0)
    }
}

/// Realistic-looking rows: words repeat (text compresses as real text does), ids and hashes
/// do not; their bytes come from `demo_blob`, so the same scale makes the same rows. `scale`
/// rows of tasks; the other tables in proportion. Milestone 3 (vector search): nine documents
/// in ten have an embedding (chunk 0) in document_embeddings, its vector (64 random-looking
/// bytes, small on purpose) in document_embeddings_data; the tenth has none yet. document_index's
/// chunk_count and indexed_at are its sync state.
func populate(_ db: CreateConnection, scale: Int) {
    let agents = 20
    db.execute("""
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(agents))
    INSERT INTO agents(id, name, status, model, budget, created_at)
      SELECT 'agent-' || i, 'worker ' || i, CASE i % 3 WHEN 0 THEN 'idle' WHEN 1 THEN 'busy' ELSE 'paused' END,
             'model-' || (i % 4), \(totalBudget / Int64(agents)), datetime('2026-01-01', '+' || i || ' hours')
      FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(max(1, scale / 10)))
    INSERT INTO sessions(id, agent_id, status, started_at, ended_at)
      SELECT 'session-' || i, 'agent-' || (1 + i % \(agents)), CASE WHEN i % 7 = 0 THEN 'active' ELSE 'ended' END,
             datetime('2026-01-01', '+' || i || ' minutes'), datetime('2026-01-01', '+' || (i + 30) || ' minutes')
      FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(scale))
    INSERT INTO tasks(id, agent_id, session_id, parent_id, title, description, status, priority, created_at, updated_at)
      SELECT i, 'agent-' || (1 + i % \(agents)), 'session-' || (1 + i % \(max(1, scale / 10))),
             CASE WHEN i > 10 AND i % 5 = 0 THEN i - 7 END,
             'Task ' || i || ': refactor the ' || (CASE i % 4 WHEN 0 THEN 'parser' WHEN 1 THEN 'scheduler' WHEN 2 THEN 'storage layer' ELSE 'API' END),
             'Investigate and resolve the reported problem in component ' || (i % 97) ||
             '. Steps: reproduce, write a failing test, fix, verify under load. Context: ' || hex(demo_blob(48, 1, i)),
             CASE i % 5 WHEN 0 THEN 'pending' WHEN 1 THEN 'running' ELSE 'completed' END,
             i % 10, datetime('2026-01-01', '+' || i || ' seconds'), datetime('2026-01-01', '+' || (i + 60) || ' seconds')
      FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(scale * 2))
    INSERT INTO audit(task_id, agent_id, action, details, created_at)
      SELECT 1 + i % \(scale), 'agent-' || (1 + i % \(agents)),
             CASE i % 4 WHEN 0 THEN 'created' WHEN 1 THEN 'started' WHEN 2 THEN 'updated' ELSE 'completed' END,
             '{"by":"agent-' || (1 + i % \(agents)) || '","note":"state change recorded","ref":"' || hex(demo_blob(8, 2, i)) || '"}',
             datetime('2026-01-01', '+' || i || ' seconds')
      FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(max(1, scale / 4)))
    INSERT INTO checkpoints(task_id, session_id, step, data, created_at)
      SELECT 1 + i % \(scale), 'session-' || (1 + i % \(max(1, scale / 10))), i % 12,
             zeroblob(256) || demo_blob(256, 3, i), datetime('2026-01-01', '+' || i || ' seconds')
      FROM n;
    INSERT INTO state(key, value, updated_at) VALUES ('writer_seq', '0', '2026-01-01 00:00:00'),
      ('schema_version', '9', '2026-01-01 00:00:00'), ('orchestrator', 'running', '2026-01-01 00:00:00');
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(scale))
    INSERT INTO metrics(name, value, labels, agent_id, recorded_at)
      SELECT CASE i % 3 WHEN 0 THEN 'tokens_used' WHEN 1 THEN 'latency_ms' ELSE 'tasks_done' END, (i * 7919) % 1000 / 10.0,
             '{"env":"prod"}', 'agent-' || (1 + i % \(agents)), datetime('2026-01-01', '+' || i || ' seconds')
      FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(max(1, scale / 2)))
    INSERT INTO memory_entries(namespace, key, value, memory_type, session_id, created_at)
      SELECT 'ns-' || (i % 50), 'key-' || i, 'remembered fact number ' || i || ' about the codebase and its conventions',
             CASE i % 3 WHEN 0 THEN 'semantic' WHEN 1 THEN 'episodic' ELSE 'procedural' END,
             'session-' || (1 + i % \(max(1, scale / 10))), datetime('2026-01-01', '+' || i || ' seconds')
      FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(max(1, scale / 5)))
    INSERT INTO document_index(path, title, content_hash, chunk_count, indexed_at)
      SELECT 'docs/section-' || (i % 40) || '/page-' || i || '.md', 'Design note ' || i, hex(demo_blob(32, 4, i)), 1 + i % 30,
             datetime('2026-01-01', '+' || i || ' seconds')
      FROM n;
    INSERT INTO document_embeddings(document_id, chunk, model, created_at)
      SELECT id, 0, 'embed-small-' || (id % 2), datetime(indexed_at, '+5 seconds')
      FROM document_index WHERE id % 10 <> 0;
    INSERT INTO document_embeddings_data(embedding_id, vector)
      SELECT id, demo_blob(64, 5, id) FROM document_embeddings;
    """)
}

func create(_ args: [String]) throws {
    guard let path = args.first else { fail("usage: abathur-demo create DB [--rows N | --size-mb M]") }
    // About 1.5 KiB of database per task row once every table is filled in proportion
    // (measured: --size-mb 1024 made 686 MiB at 2250 bytes a row).
    let rows = option("--rows", in: args).flatMap(Int.init)
        ?? option("--size-mb", in: args).flatMap(Int.init).map { $0 * 1024 * 1024 / 1510 } ?? 5000
    guard (try FileStatus.of(path)) == nil else { fail("\(path): already exists") }
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard fd >= 0 else { fail("\(path): cannot create") }
    close(fd)
    let db = CreateConnection(path: path)
    db.execute("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA application_id=1094865992; PRAGMA user_version=9")
    db.execute("BEGIN; \(schema) COMMIT;")
    db.execute("BEGIN")
    populate(db, scale: max(rows, 20))
    db.execute("COMMIT")
    print("\(path): \(max(rows, 20)) tasks, \(db.integer("SELECT count(*) FROM sqlite_schema WHERE type='index'")) indexes, \(db.integer("PRAGMA page_count") * db.integer("PRAGMA page_size") / 1024) KiB")
}

/// One transaction per step: a new task with the next sequence number, its audit row, the
/// sequence in `state`, and a transfer between two agents that keeps the budget sum constant.
/// `--commits N` stops after N; `--crash` writes in WAL mode with automatic checkpoints off and
/// ends with an exit that closes nothing, as a service that crashed: its commits stay in a hot
/// `-wal`.
func write(_ args: [String]) throws {
    guard let path = args.first else { fail("usage: abathur-demo write DB [--seconds S | --commits N] [--rate TPS] [--say-ready] [--crash]") }
    let commits = option("--commits", in: args).flatMap(Int.init)
    let seconds = option("--seconds", in: args).flatMap(Double.init) ?? (commits == nil ? 5 : .infinity)
    let rate = option("--rate", in: args).flatMap(Double.init) ?? 0
    let crash = args.contains("--crash")
    let db = try Connection(path: path, mode: .readWrite, busyTimeoutMs: 10_000)
    try db.execute("PRAGMA foreign_keys=ON")
    // The service runs in WAL mode (a restored backup is in rollback mode until it opens it).
    if crash { try db.execute("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0") }
    let deadline = Clock.monotonicSeconds() + seconds
    var written = 0
    while Clock.monotonicSeconds() < deadline && written < (commits ?? .max) {
        let step = Clock.monotonicSeconds()
        try db.execute("""
        BEGIN IMMEDIATE;
        UPDATE state SET value = CAST(value AS INTEGER) + 1, updated_at = datetime('now') WHERE key = 'writer_seq';
        INSERT INTO tasks(agent_id, title, description, status, writer_seq, created_at)
          SELECT 'agent-' || (1 + abs(random()) % 20), 'writer task', hex(randomblob(64)), 'pending',
                 CAST(value AS INTEGER), datetime('now') FROM state WHERE key = 'writer_seq';
        INSERT INTO audit(task_id, agent_id, action, details, created_at)
          SELECT last_insert_rowid(), 'agent-1', 'writer', 'seq ' || value, datetime('now') FROM state WHERE key = 'writer_seq';
        UPDATE agents SET budget = budget - 7 WHERE id = 'agent-' || (1 + (SELECT CAST(value AS INTEGER) FROM state WHERE key = 'writer_seq') % 20);
        UPDATE agents SET budget = budget + 7 WHERE id = 'agent-' || (1 + (SELECT CAST(value AS INTEGER) + 3 FROM state WHERE key = 'writer_seq') % 20);
        COMMIT;
        """)
        written += 1
        if written == 1 && args.contains("--say-ready") {
            let line = Array("ready\n".utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
        }
        if rate > 0 {
            let wait = 1 / rate - (Clock.monotonicSeconds() - step)
            if wait > 0 { Clock.sleep(seconds: wait) }
        }
    }
    print(written)
    if crash {
        fflush(nil)  // every open stream: the count printed above
        _exit(0)
    }
}

func check(_ args: [String]) throws {
    guard let path = args.first else { fail("usage: abathur-demo check DB [--min-seq N]") }
    let db = try Connection(path: path, mode: .readOnly)
    let seq = try db.integer("SELECT CAST(value AS INTEGER) FROM state WHERE key = 'writer_seq'")
    let sum = try db.integer("SELECT sum(budget) FROM agents")
    let tasks = try db.integer("SELECT count(*) FROM tasks WHERE writer_seq IS NOT NULL")
    let maxSeq = try db.integer("SELECT coalesce(max(writer_seq), 0) FROM tasks")
    let audits = try db.integer("SELECT count(*) FROM audit WHERE action = 'writer'")
    var problems: [String] = []
    if sum != totalBudget { problems.append("budget sum \(sum), expected \(totalBudget)") }
    if tasks != seq || maxSeq != seq { problems.append("state seq \(seq), writer tasks \(tasks), max seq \(maxSeq)") }
    if audits != seq { problems.append("state seq \(seq), writer audit rows \(audits)") }
    if let min = option("--min-seq", in: args).flatMap(Int64.init), seq < min {
        problems.append("seq \(seq) is older than \(min), the value when the backup started")
    }
    guard problems.isEmpty else { fail("\(path): inconsistent: \(problems.joined(separator: "; "))") }
    print("\(path): consistent at seq \(seq)")
}

func seq(_ args: [String]) throws {
    guard let path = args.first else { fail("usage: abathur-demo seq DB") }
    let db = try Connection(path: path, mode: .readOnly)
    print(try db.integer("SELECT CAST(value AS INTEGER) FROM state WHERE key = 'writer_seq'"))
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "create": try create(Array(arguments.dropFirst()))
    case "write": try write(Array(arguments.dropFirst()))
    case "check": try check(Array(arguments.dropFirst()))
    case "seq": try seq(Array(arguments.dropFirst()))
    default: fail("usage: abathur-demo create|write|check|seq DB ...")
    }
} catch {
    fail("\(error)")
}
