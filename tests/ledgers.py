"""Ledgers as earlier releases wrote them, for the migration tests."""

# The jobs table of the first release: no edit checkpoint, no retried_at, no control table.
FIRST_RELEASE_JOBS = (
    "CREATE TABLE jobs (id TEXT PRIMARY KEY, rule TEXT NOT NULL, engine TEXT NOT NULL,"
    " source TEXT NOT NULL, source_size INTEGER, source_mtime_ns INTEGER,"
    " source_inode INTEGER, claimed TEXT, fingerprint TEXT, size INTEGER,"
    " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, retryable INTEGER,"
    " session TEXT, media TEXT, edits_done INTEGER NOT NULL DEFAULT 0, draft TEXT,"
    " render TEXT, output TEXT, error TEXT, warnings TEXT, disposed TEXT, timings TEXT,"
    " created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL)"
)
