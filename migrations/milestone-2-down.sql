-- Milestone 2 (the memory system) rolled back: abathur-restore --migrate milestone-2-down
--
-- Drops sessions, memory_entries and document_index with their indexes. Every other table
-- keeps every row, index and value.
--
-- Run milestone-3-down first. Vector search (milestone 3) builds on document_index: its
-- tables are document_embeddings, which references document_index, and
-- document_embeddings_data, which references document_embeddings. Rolling milestone 2 back
-- under them would leave them pointing at a table that no longer exists. This file
-- does not drop them on its own: it refuses, before it changes anything, with
-- "CHECK constraint failed: run_milestone_3_down_first". Each rollback is then a migration
-- of its own, with its own pre-migrate backup to go back to.
--
-- The trap in the runbook's list (DROP TABLE sessions, memory_entries, document_index):
-- tasks and checkpoints declare session_id REFERENCES sessions(id). With foreign keys on,
-- the drop fails; with them off, it leaves tasks and checkpoints declaring a foreign key to
-- a table that does not exist (the tool refuses that result). So this file first rebuilds
-- tasks and checkpoints without that foreign key, with SQLite's documented 12-step table
-- change (sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes"),
-- which needs foreign keys off (the header below; the tool sets it before BEGIN and runs
-- foreign_key_check on the result):
--   create tasks_new without the constraint, copy every row (ids kept), drop tasks,
--   rename tasks_new to tasks, create its indexes again by their names; then checkpoints.
-- The session_id columns stay, as plain TEXT, with their values and their indexes: nothing
-- in tasks or checkpoints is lost. The other foreign keys (tasks.agent_id, tasks.parent_id,
-- checkpoints.task_id, and audit's and checkpoints' references to tasks) are kept: they name
-- their parent table, and the rename gives tasks its name back.
--
-- It targets the schema that abathur-demo creates, the stand-in for abathur's. Before it
-- changes anything it checks that tasks and checkpoints have exactly the columns it copies
-- and that the schema has no trigger or view (DROP TABLE would drop a trigger silently); on
-- another schema it refuses, and changes nothing. An operator whose schema differs adapts a
-- copy of this file (the column lists, the indexes, any trigger to create again) and runs
-- that copy: abathur-restore --migrate /path/to/the/copy.sql (try it first with --dry-run).
--
-- foreign-keys: off
-- expect-tables: agents, tasks, audit, checkpoints, state, metrics
-- expect-absent: sessions, memory_entries, document_index, document_embeddings, document_embeddings_data
-- expect-min-indexes: 25

-- The preconditions, before anything changes: each failing one names itself in the error.
CREATE TEMP TABLE milestone_2_down_preconditions(
  a INTEGER CONSTRAINT run_milestone_3_down_first CHECK (a),
  b INTEGER CONSTRAINT foreign_keys_must_be_off CHECK (b),
  c INTEGER CONSTRAINT tasks_has_other_columns_adapt_a_copy CHECK (c),
  d INTEGER CONSTRAINT checkpoints_has_other_columns_adapt_a_copy CHECK (d),
  e INTEGER CONSTRAINT a_trigger_or_view_would_be_lost_adapt_a_copy CHECK (e));
INSERT INTO temp.milestone_2_down_preconditions VALUES (
  NOT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name IN ('document_embeddings', 'document_embeddings_data')),
  (SELECT foreign_keys FROM pragma_foreign_keys) = 0,
  (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info('tasks') ORDER BY cid))
    = 'id,agent_id,session_id,parent_id,title,description,status,priority,writer_seq,created_at,updated_at,completed_at',
  (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info('checkpoints') ORDER BY cid))
    = 'id,task_id,session_id,step,data,created_at',
  NOT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE type IN ('trigger', 'view')));
DROP TABLE temp.milestone_2_down_preconditions;

-- tasks, rebuilt without session_id's foreign key (12-step change, steps 4 to 8).
CREATE TABLE tasks_new(id INTEGER PRIMARY KEY, agent_id TEXT REFERENCES agents(id), session_id TEXT,
  parent_id INTEGER REFERENCES tasks(id), title TEXT NOT NULL, description TEXT, status TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 5, writer_seq INTEGER, created_at TEXT NOT NULL, updated_at TEXT, completed_at TEXT);
INSERT INTO tasks_new(id, agent_id, session_id, parent_id, title, description, status, priority, writer_seq,
                      created_at, updated_at, completed_at)
  SELECT id, agent_id, session_id, parent_id, title, description, status, priority, writer_seq,
         created_at, updated_at, completed_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX idx_tasks_agent ON tasks(agent_id);
CREATE INDEX idx_tasks_session ON tasks(session_id);
CREATE INDEX idx_tasks_parent ON tasks(parent_id);
CREATE INDEX idx_tasks_status ON tasks(status);
CREATE INDEX idx_tasks_priority ON tasks(priority, created_at);
CREATE INDEX idx_tasks_created ON tasks(created_at);
CREATE INDEX idx_tasks_seq ON tasks(writer_seq);
CREATE INDEX idx_tasks_status_priority ON tasks(status, priority);

-- checkpoints, rebuilt the same way.
CREATE TABLE checkpoints_new(id INTEGER PRIMARY KEY, task_id INTEGER REFERENCES tasks(id), session_id TEXT,
  step INTEGER NOT NULL, data BLOB, created_at TEXT NOT NULL);
INSERT INTO checkpoints_new(id, task_id, session_id, step, data, created_at)
  SELECT id, task_id, session_id, step, data, created_at FROM checkpoints;
DROP TABLE checkpoints;
ALTER TABLE checkpoints_new RENAME TO checkpoints;
CREATE INDEX idx_checkpoints_task ON checkpoints(task_id);
CREATE INDEX idx_checkpoints_session ON checkpoints(session_id);
CREATE INDEX idx_checkpoints_step ON checkpoints(task_id, step);

-- The memory system: nothing references these tables any more.
DROP INDEX idx_memory_namespace;
DROP INDEX idx_memory_session;
DROP INDEX idx_memory_type;
DROP INDEX idx_memory_updated;
DROP TABLE memory_entries;

DROP INDEX idx_sessions_agent;
DROP INDEX idx_sessions_status;
DROP INDEX idx_sessions_started;
DROP TABLE sessions;

DROP INDEX idx_document_hash;
DROP INDEX idx_document_indexed;
DROP INDEX idx_document_title;
DROP INDEX idx_document_chunks;
DROP TABLE document_index;
