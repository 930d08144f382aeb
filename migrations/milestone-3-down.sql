-- Milestone 3 (vector search) rolled back: abathur-restore --migrate milestone-3-down
--
-- Drops the embedding tables, document_embeddings_data and document_embeddings, with
-- document_embeddings' two indexes, and resets document_index's sync state (chunk_count and
-- indexed_at back to NULL), so that the documents are indexed again from scratch if vector
-- search comes back. Every document_index row, and every other table, index and row, is kept.
--
-- The tool runs this file in one transaction on a copy of the database, checks the result
-- against the expectations below and installs it only if they hold; a statement that fails
-- changes nothing. document_embeddings_data references document_embeddings, so it is dropped
-- first; then nothing references document_embeddings, and foreign keys stay on.
--
-- It targets the schema that abathur-demo creates, the stand-in for abathur's. An operator
-- whose schema differs adapts a copy of this file and runs that copy:
-- abathur-restore --migrate /path/to/the/copy.sql (try it first with --dry-run).
--
-- foreign-keys: on
-- expect-tables: agents, sessions, tasks, audit, checkpoints, state, metrics, memory_entries, document_index
-- expect-absent: document_embeddings, document_embeddings_data
-- expect-min-indexes: 39

DROP TABLE document_embeddings_data;

DROP INDEX idx_document_embeddings_document;
DROP INDEX idx_document_embeddings_model;
DROP TABLE document_embeddings;

UPDATE document_index SET chunk_count = NULL, indexed_at = NULL;
