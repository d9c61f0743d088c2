-- Roster schema v2: the post's name (岗位名称) as exported, when given.
ALTER TABLE roster_entries ADD COLUMN post_name TEXT;
