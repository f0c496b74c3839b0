-- The audit log: append-only, each entry chained to the one before by its hash, with signed
-- Merkle checkpoints over ranges of entries. The store only keeps them; hashing, signing and
-- verifying are the sharing crate's.
CREATE TABLE audit_log (
    seq     BIGINT PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);

CREATE TABLE audit_checkpoints (
    from_seq  BIGINT NOT NULL,
    to_seq    BIGINT NOT NULL,
    root      TEXT NOT NULL,
    key       TEXT NOT NULL,
    signature TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (from_seq, to_seq)
);
