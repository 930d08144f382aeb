-- Milestone 3 (vector search) rolled back: abathur-restore --migrate milestone-3-down
--
-- Drops the embedding tables, embeddings and embedding_queue, with their four indexes, and
-- resets document_index's sync state (chunk_count and indexed_at back to NULL), so that the
-- documents are indexed again from scratch if vector search comes back. Every document_index
-- row, and every other table, index and row, is kept.
--
-- The tool runs this file in one transaction on a copy of the database, checks the result
-- against the expectations below and installs it only if they hold; a statement that fails
-- changes nothing. Nothing references the embedding tables, so foreign keys stay on.
--
-- It targets the schema that abathur-demo creates, the stand-in for abathur's. An operator
-- whose schema differs adapts a copy of this file and runs that copy:
-- abathur-restore --migrate /path/to/the/copy.sql (try it first with --dry-run).
--
-- foreign-keys: on
-- expect-tables: agents, sessions, tasks, audit, checkpoints, state, metrics, memory_entries, document_index
-- expect-absent: embeddings, embedding_queue
-- expect-min-indexes: 39

DROP INDEX idx_embedding_queue_document;
DROP INDEX idx_embedding_queue_queued;
DROP TABLE embedding_queue;

DROP INDEX idx_embeddings_document;
DROP INDEX idx_embeddings_model;
DROP TABLE embeddings;

UPDATE document_index SET chunk_count = NULL, indexed_at = NULL;
