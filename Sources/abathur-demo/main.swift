// abathur-demo: makes abathur-shaped demo databases and drives them, for `make demo`, the
// tests and the benchmarks. It is a development tool and is not shipped in the package.
//
//   abathur-demo create DB [--rows N | --size-mb M]   11 tables (the 9 core ones and milestone 3's
//                                                     document_embeddings, document_embeddings_data),
//                                                     36 indexes (41 with SQLite's automatic ones),
//                                                     WAL mode
//   abathur-demo write DB [--seconds S] [--rate TPS] [--say-ready]
//                                                     a writer that keeps invariants; with
//                                                     --say-ready, "ready" on stderr after
//                                                     its first commit
//   abathur-demo check DB [--min-seq N]               exit 0 when the invariants hold
//   abathur-demo seq DB                               print the writer's sequence number
import AbathurCore
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

/// Realistic-looking rows: words repeat (text compresses as real text does), ids and hashes
/// do not. `scale` rows of tasks; the other tables in proportion. Milestone 3 (vector search):
/// nine documents in ten have an embedding (chunk 0) in document_embeddings, its vector (64 random
/// bytes, small on purpose) in document_embeddings_data; the tenth has none yet. document_index's
/// chunk_count and indexed_at are its sync state.
func populate(_ db: Connection, scale: Int) throws {
    let agents = 20
    try db.execute("""
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
             '. Steps: reproduce, write a failing test, fix, verify under load. Context: ' || hex(randomblob(48)),
             CASE i % 5 WHEN 0 THEN 'pending' WHEN 1 THEN 'running' ELSE 'completed' END,
             i % 10, datetime('2026-01-01', '+' || i || ' seconds'), datetime('2026-01-01', '+' || (i + 60) || ' seconds')
      FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(scale * 2))
    INSERT INTO audit(task_id, agent_id, action, details, created_at)
      SELECT 1 + i % \(scale), 'agent-' || (1 + i % \(agents)),
             CASE i % 4 WHEN 0 THEN 'created' WHEN 1 THEN 'started' WHEN 2 THEN 'updated' ELSE 'completed' END,
             '{"by":"agent-' || (1 + i % \(agents)) || '","note":"state change recorded","ref":"' || hex(randomblob(8)) || '"}',
             datetime('2026-01-01', '+' || i || ' seconds')
      FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(max(1, scale / 4)))
    INSERT INTO checkpoints(task_id, session_id, step, data, created_at)
      SELECT 1 + i % \(scale), 'session-' || (1 + i % \(max(1, scale / 10))), i % 12,
             zeroblob(256) || randomblob(256), datetime('2026-01-01', '+' || i || ' seconds')
      FROM n;
    INSERT INTO state(key, value, updated_at) VALUES ('writer_seq', '0', datetime('now')),
      ('schema_version', '9', datetime('now')), ('orchestrator', 'running', datetime('now'));
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
      SELECT 'docs/section-' || (i % 40) || '/page-' || i || '.md', 'Design note ' || i, hex(randomblob(32)), 1 + i % 30,
             datetime('2026-01-01', '+' || i || ' seconds')
      FROM n;
    INSERT INTO document_embeddings(document_id, chunk, model, created_at)
      SELECT id, 0, 'embed-small-' || (id % 2), datetime(indexed_at, '+5 seconds')
      FROM document_index WHERE id % 10 <> 0;
    INSERT INTO document_embeddings_data(embedding_id, vector)
      SELECT id, randomblob(64) FROM document_embeddings;
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
    let db = try Connection(path: path, mode: .readWrite)
    try db.execute("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA application_id=1094865992; PRAGMA user_version=9")
    try db.execute("BEGIN; \(schema) COMMIT;")
    try db.execute("BEGIN")
    try populate(db, scale: max(rows, 20))
    try db.execute("COMMIT")
    print("\(path): \(max(rows, 20)) tasks, \(try db.integer("SELECT count(*) FROM sqlite_schema WHERE type='index'")) indexes, \(try db.integer("PRAGMA page_count") * (try db.integer("PRAGMA page_size")) / 1024) KiB")
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
