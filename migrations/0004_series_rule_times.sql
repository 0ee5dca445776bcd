-- The start and end the recurrence rule gave each occurrence of a series, kept when the
-- occurrence is moved: a calendar file names a moved or cancelled occurrence by it (RFC 5545
-- RECURRENCE-ID and EXDATE). Occurrences booked before this migration take their current times.
ALTER TABLE conferences ADD COLUMN rule_start timestamptz, ADD COLUMN rule_end timestamptz;
UPDATE conferences SET rule_start = starts_at, rule_end = ends_at WHERE series_id IS NOT NULL;
ALTER TABLE conferences ADD CONSTRAINT conferences_rule_times_check
  CHECK ((series_id IS NULL) = (rule_start IS NULL) AND (series_id IS NULL) = (rule_end IS NULL));
