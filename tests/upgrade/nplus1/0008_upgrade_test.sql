-- The one migration the "next version" build of the upgrade tests carries on top of
-- migrations/ (-DVCRM_EXTRA_MIGRATIONS_DIR=tests/upgrade/nplus1, see packaging/dev test). After a
-- real upgrade to it the table exists, with its one row; a database it was never applied to has
-- neither. Never part of a release: renumber it when migrations/ reaches this number.
CREATE TABLE upgrade_test_marker (
  id         integer PRIMARY KEY,
  note       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO upgrade_test_marker (id, note) VALUES (1, 'applied by the next-version test build');
