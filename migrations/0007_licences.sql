-- Licences. Every serial that has run on this database is recorded (a backup carries it and the
-- licences bound to it); which one is this server's own is kept outside the database, in
-- <state>/serial, so a database restored from another server leaves this server's serial alone.
CREATE TABLE appliance_serials (
  serial       text PRIMARY KEY,
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- The latest time this server's clock has shown (seconds since the epoch): a clock set back
  -- below it does not bring an expired licence back.
  latest_seen  bigint NOT NULL
);

-- Each licence file applied, exactly as uploaded. The active one of a serial has no
-- replaced_at; the ones it replaced are kept.
CREATE TABLE licences (
  id          bigserial PRIMARY KEY,
  serial      text NOT NULL REFERENCES appliance_serials (serial),
  licence_id  text NOT NULL,
  sequence    bigint NOT NULL,
  file        text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  applied_by  text,
  replaced_at timestamptz
);
CREATE UNIQUE INDEX licences_one_active ON licences (serial) WHERE replaced_at IS NULL;
