-- Sync health: every connector run, and per source and hour the events and
-- rejections the merger applied. Both are written in the transaction of
-- the batch that carried them, so each message counts once, and a rebuild
-- from the topics reproduces them. Times are milliseconds since the epoch.

CREATE TABLE sync_runs (
    run_id TEXT PRIMARY KEY,
    source_system TEXT NOT NULL,
    location TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    rows_read BIGINT NOT NULL,
    published BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    -- Why the run stopped early; NULL when it ran to the end.
    error TEXT
);

CREATE INDEX sync_runs_by_source ON sync_runs (source_system, finished_at);

-- Hours are those of the event's own time (when the connector read the
-- row), not of its arrival, so a late batch lands in the hour it belongs to.
CREATE TABLE source_activity (
    source_system TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    events BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    -- The newest event time within the hour; NULL if only rejections.
    last_event_at BIGINT,
    PRIMARY KEY (source_system, hour_start)
);
