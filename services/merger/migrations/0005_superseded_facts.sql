-- Events that arrived older than the fact the store held (a stale export
-- ingested late, a replay, a re-snapshot): never applied, kept here as
-- history with where they came from and what they said.

CREATE TABLE superseded_facts (
    event_id TEXT PRIMARY KEY,
    fact_table TEXT NOT NULL,
    operation TEXT NOT NULL,
    content TEXT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    observed_at BIGINT NOT NULL
);
