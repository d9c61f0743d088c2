-- The block data: units, roster entries and payments, plus the merger's own
-- bookkeeping (applied events and consumer offsets). The same SQL runs on
-- SQLite and PostgreSQL, so only portable types are used: dates are ISO
-- 8601 text (which sorts as dates), money is integer cents, times are
-- milliseconds since the epoch.

CREATE TABLE units (
    unit_code TEXT PRIMARY KEY,
    unit_name TEXT NOT NULL,
    unit_type TEXT NOT NULL,
    quota BIGINT NOT NULL,
    approved_on TEXT,
    deleted BIGINT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    event_id TEXT NOT NULL,
    observed_at BIGINT NOT NULL
);

CREATE TABLE roster_entries (
    citizen_id TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    name TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    post_category TEXT NOT NULL,
    post_category_label TEXT NOT NULL,
    employment_form TEXT NOT NULL,
    hire_date TEXT,
    contract_start TEXT,
    contract_end TEXT,
    contract_open_ended BIGINT NOT NULL,
    status TEXT NOT NULL,
    status_label TEXT NOT NULL,
    left_on TEXT,
    deleted BIGINT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    event_id TEXT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (citizen_id, unit_code)
);

CREATE TABLE payroll_payments (
    citizen_id TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    pay_month BIGINT NOT NULL,
    name TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    gross_cents BIGINT,
    net_cents BIGINT,
    fund_source TEXT NOT NULL,
    deleted BIGINT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    event_id TEXT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (citizen_id, unit_code, pay_month)
);

CREATE INDEX payroll_payments_by_person_month ON payroll_payments (citizen_id, pay_month);

CREATE TABLE dead_letters (
    dead_letter_id TEXT PRIMARY KEY,
    source_system TEXT NOT NULL,
    location TEXT NOT NULL,
    position TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    observed_at BIGINT NOT NULL
);

-- Every event applied, so a re-delivered event is recognised by its id.
CREATE TABLE applied_events (
    event_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    kafka_partition BIGINT NOT NULL,
    kafka_offset BIGINT NOT NULL
);

-- The next offset to apply per partition, written in the same transaction
-- as the facts of the batch: the store, not Kafka, is the truth of what
-- has been applied.
CREATE TABLE consumer_offsets (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    kafka_partition BIGINT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);
