-- Envelope v2: when the source exported a fact (the export file's own
-- time), null for facts read live from a table and for events of older
-- schemas. Facts are ordered by it before observed_at (the read time), so
-- an older export ingested after a newer one does not overwrite it.
ALTER TABLE units ADD COLUMN exported_at BIGINT;
ALTER TABLE roster_entries ADD COLUMN exported_at BIGINT;
ALTER TABLE payroll_payments ADD COLUMN exported_at BIGINT;
ALTER TABLE contributions ADD COLUMN exported_at BIGINT;
ALTER TABLE pension_starts ADD COLUMN exported_at BIGINT;
ALTER TABLE enforcement_cases ADD COLUMN exported_at BIGINT;
ALTER TABLE veteran_placements ADD COLUMN exported_at BIGINT;
ALTER TABLE purchased_services ADD COLUMN exported_at BIGINT;
ALTER TABLE superseded_facts ADD COLUMN exported_at BIGINT;
