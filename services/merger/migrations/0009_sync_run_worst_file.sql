-- The file of a run with the largest share of rejected rows, so that one
-- bad file among good ones still shows in sync health. NULL when the run
-- rejected nothing (or came from a release that did not record it).

ALTER TABLE sync_runs ADD COLUMN worst_file TEXT;
ALTER TABLE sync_runs ADD COLUMN worst_file_rows BIGINT;
ALTER TABLE sync_runs ADD COLUMN worst_file_rejected BIGINT;
