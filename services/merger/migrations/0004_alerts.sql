-- Alerts raised by the rules, kept with their state so that an
-- acknowledgement survives re-evaluation and a restart. One row per alert
-- id (kind, person and unit); times are milliseconds since the epoch.

CREATE TABLE alerts (
    alert_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    citizen_id TEXT,
    unit_code TEXT,
    evidence TEXT NOT NULL,
    state TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_note TEXT,
    acknowledged_at BIGINT,
    resolved_at BIGINT,
    -- The state last published to the alerts topic (NULL: never). A state
    -- that differs is published by the hub's rules loop, whoever changed
    -- it (the loop itself, `alerts ack` or the gRPC Acknowledge).
    published_state TEXT
);

CREATE INDEX alerts_by_state ON alerts (state, kind);
CREATE INDEX alerts_by_unit ON alerts (unit_code);
CREATE INDEX alerts_unpublished ON alerts (published_state);
