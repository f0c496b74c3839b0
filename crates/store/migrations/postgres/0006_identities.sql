-- Identities: departments, users (a role and a jurisdiction each) and API tokens, whose secrets
-- are kept only as Argon2id hashes.
CREATE TABLE departments (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    division   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    department   TEXT REFERENCES departments (id),
    role         TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX tokens_by_user ON tokens (user_id);
