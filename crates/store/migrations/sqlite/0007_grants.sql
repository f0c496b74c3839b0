-- Data requests and grants: a department asks for fields of a resource for a purpose, scope,
-- period and daily quota; the provider approves or rejects; grants expire and can be revoked.
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    department  TEXT NOT NULL,
    resource    TEXT NOT NULL,
    fields      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    scope       TEXT NOT NULL,
    valid_from  BIGINT NOT NULL,
    valid_to    BIGINT NOT NULL,
    daily_quota BIGINT NOT NULL,
    status      TEXT NOT NULL,
    decided_by  TEXT,
    reason      TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX grants_by_department ON grants (department);
