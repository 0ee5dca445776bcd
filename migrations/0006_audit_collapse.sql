-- Refusals of requests without a session are collapsed so they cannot flood the audit log:
-- one row per (address, action, status) and minute, keyed by collapse_key, counting the
-- refusals it stands for, with the time of the last one. Other rows keep count 1 and no key.
ALTER TABLE audit_log ADD COLUMN count integer NOT NULL DEFAULT 1 CHECK (count >= 1);
ALTER TABLE audit_log ADD COLUMN last_at timestamptz;
ALTER TABLE audit_log ADD COLUMN collapse_key text;
ALTER TABLE audit_log ADD COLUMN collapse_minute timestamptz;
CREATE UNIQUE INDEX audit_log_collapse_idx ON audit_log (collapse_key, collapse_minute)
  WHERE collapse_key IS NOT NULL;
