-- The other departments' facts: pension starts, court enforcement cases,
-- veteran placements and purchased-service contracts. Same portable types
-- and provenance columns as 0001.

CREATE TABLE pension_starts (
    citizen_id TEXT NOT NULL,
    benefit_type TEXT NOT NULL,
    name TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    deleted BIGINT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    event_id TEXT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (citizen_id, benefit_type)
);

CREATE TABLE enforcement_cases (
    case_number TEXT NOT NULL,
    citizen_id TEXT NOT NULL,
    name TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    filed_on TEXT,
    case_status TEXT NOT NULL,
    deleted BIGINT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    event_id TEXT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (case_number, citizen_id)
);

CREATE INDEX enforcement_cases_by_person ON enforcement_cases (citizen_id);

CREATE TABLE veteran_placements (
    citizen_id TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    name TEXT NOT NULL,
    placement_type TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    placed_on TEXT,
    deleted BIGINT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    event_id TEXT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (citizen_id, unit_code)
);

CREATE INDEX veteran_placements_by_unit ON veteran_placements (unit_code);

CREATE TABLE purchased_services (
    unit_code TEXT NOT NULL,
    project_name TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    provider TEXT NOT NULL,
    staff_count BIGINT NOT NULL,
    contract_amount_cents BIGINT,
    period_start TEXT,
    period_end TEXT,
    deleted BIGINT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    event_id TEXT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (unit_code, project_name)
);
