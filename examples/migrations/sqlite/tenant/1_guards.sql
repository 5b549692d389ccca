-- Runs inside each tenant's own database file (`<folder>/<tenant>.db`), in one transaction
-- with its record: SQLite's DDL is transactional, so a tenant is migrated wholly or not at all.
-- Timestamps are RFC 3339 text, which sqlx decodes into `OffsetDateTime`. (No trigger for
-- `updated_at`: SQLite's `RETURNING` does not see what an AFTER trigger changes.)
CREATE TABLE guards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    position TEXT NOT NULL,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
