-- The guestbook of socketd's default config.hcl (the tutorial's LAMP step).
-- The sqlite plugin applies this once, when ./data/guestbook.db is new;
-- later changes belong in a migrations folder (see plugins/sqlite/README.md).
CREATE TABLE IF NOT EXISTS entries (
  id      INTEGER PRIMARY KEY,
  name    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  message TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
) STRICT;
