-- The gateway's audit log: every decision, allowed and denied, one row
-- each, chained. Each entry's hash is HMAC-SM3, under the deployment's
-- audit key, of the previous entry's hash and this entry's content, so that
-- editing, inserting or deleting an entry breaks the chain at that entry,
-- and nobody without the key can forge a chain that verifies. Times are
-- milliseconds since the epoch.

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    -- Who called: a token's hash prefix or a certificate's subject.
    principal TEXT NOT NULL,
    department TEXT NOT NULL,
    method TEXT NOT NULL,
    purpose TEXT NOT NULL,
    case_number TEXT NOT NULL,
    -- The operator named in the request's metadata, as sent (UTF-8).
    operator TEXT NOT NULL,
    -- allowed or denied.
    decision TEXT NOT NULL,
    -- Why denied; empty when allowed.
    reason TEXT NOT NULL,
    -- The fields returned and how: citizen_id:masked,employer.
    fields TEXT NOT NULL,
    result_count BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    -- 1 once published to the audit topic.
    published INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX audit_log_unpublished ON audit_log (published, seq);
