-- Social-insurance contributions, one row per person, unit, month and
-- insurance type; the same portable types as 0001.

CREATE TABLE contributions (
    citizen_id TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    contribution_month BIGINT NOT NULL,
    insurance_type TEXT NOT NULL,
    name TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    insured_status TEXT NOT NULL,
    deleted BIGINT NOT NULL,
    source_system TEXT NOT NULL,
    source_location TEXT NOT NULL,
    source_position TEXT NOT NULL,
    event_id TEXT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (citizen_id, unit_code, contribution_month, insurance_type)
);

CREATE INDEX contributions_by_person_month ON contributions (citizen_id, contribution_month);
