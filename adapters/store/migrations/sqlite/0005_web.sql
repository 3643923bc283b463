-- The operator console (issue #6): browser/API sessions and login throttling.

-- A session: the random 256-bit token is never stored, only its SHA-256 (hex), so a copy of
-- the database does not let anyone log in. Idle expiry is checked against last_seen (unix
-- seconds); expires_at is the absolute limit.
CREATE TABLE web_sessions (
    token_hash  TEXT PRIMARY KEY,
    login       TEXT NOT NULL REFERENCES users (login),
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_login ON web_sessions (login);

-- Failed logins per key ('login:<name>' or 'ip:<address>'): after too many failures within
-- the window the key is locked until locked_until (unix seconds).
CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    locked_until  INTEGER NOT NULL
) STRICT;
