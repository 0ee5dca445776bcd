-- Media bridges, conferences (single or in a recurring series), participant legs and CDRs.

CREATE TABLE bridges (
  id                bigserial PRIMARY KEY,
  name              text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
  type              text NOT NULL CHECK (type IN ('janus')),
  url               text NOT NULL,
  admin_url         text NOT NULL,
  admin_secret      text NOT NULL,
  capacity_ports    integer NOT NULL CHECK (capacity_ports BETWEEN 1 AND 100000),
  pool              text NOT NULL DEFAULT 'default' CHECK (pool ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
  state             text NOT NULL DEFAULT 'enabled'
                      CHECK (state IN ('enabled', 'cordoned', 'disabled')),
  -- The bridge's event handler signs in with HTTP basic auth as bridge-<id> / events_secret.
  events_secret     text NOT NULL,
  health            text NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'up', 'down')),
  health_cause      text,
  health_message    text,
  latency_ms        integer,
  bridge_version    text,
  health_checked_at timestamptz,
  health_changed_at timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conference_series (
  id          bigserial PRIMARY KEY,
  frequency   text NOT NULL CHECK (frequency IN ('daily', 'weekly')),
  interval_n  integer NOT NULL CHECK (interval_n BETWEEN 1 AND 52),
  weekdays    text[] NOT NULL DEFAULT '{}',  -- MO..SU for weekly series
  count_n     integer CHECK (count_n BETWEEN 1 AND 366),
  until_at    timestamptz,
  time_zone   text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conferences (
  id                  bigserial PRIMARY KEY,
  series_id           bigint REFERENCES conference_series (id),
  name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  owner               text NOT NULL,
  starts_at           timestamptz NOT NULL,
  ends_at             timestamptz NOT NULL,
  time_zone           text NOT NULL DEFAULT 'UTC',
  ports               integer NOT NULL CHECK (ports BETWEEN 1 AND 100000),
  pin                 text CHECK (pin ~ '^[0-9]{4,12}$'),
  pool                text,
  requested_bridge_id bigint REFERENCES bridges (id) ON DELETE RESTRICT,
  bridge_id           bigint REFERENCES bridges (id) ON DELETE RESTRICT,
  room                bigint NOT NULL UNIQUE,
  room_secret         text NOT NULL,
  state               text NOT NULL DEFAULT 'scheduled'
                        CHECK (state IN ('scheduled', 'starting', 'active', 'ended', 'failed',
                                         'cancelled')),
  end_cause           text,
  auto_end_when_empty boolean NOT NULL DEFAULT false,
  actual_start        timestamptz,
  actual_end          timestamptz,
  peak_participants   integer NOT NULL DEFAULT 0,
  empty_since         timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at > starts_at)
);
CREATE INDEX conferences_live_idx ON conferences (bridge_id, starts_at, ends_at)
  WHERE state IN ('scheduled', 'starting', 'active');
CREATE INDEX conferences_starts_idx ON conferences (starts_at);
CREATE INDEX conferences_series_idx ON conferences (series_id);

-- One row per participant leg; a leg is open while left_at is null.
CREATE TABLE participant_legs (
  id             bigserial PRIMARY KEY,
  conference_id  bigint NOT NULL REFERENCES conferences (id),
  bridge_id      bigint REFERENCES bridges (id) ON DELETE SET NULL,
  room           bigint NOT NULL,
  participant_id bigint NOT NULL,
  display_name   text NOT NULL DEFAULT '',
  joined_at      timestamptz NOT NULL,
  left_at        timestamptz,
  publishing     boolean NOT NULL DEFAULT false,
  muted          boolean NOT NULL DEFAULT false,
  end_reason     text
);
-- Janus identifies a participant by (room, id) only: at most one open leg per pair.
CREATE UNIQUE INDEX participant_legs_open_idx ON participant_legs (room, participant_id)
  WHERE left_at IS NULL;
CREATE INDEX participant_legs_conference_idx ON participant_legs (conference_id);
CREATE INDEX participant_legs_left_idx ON participant_legs (left_at);

-- The conference CDR, written in the transaction that ends the conference; never updated.
CREATE TABLE conference_cdrs (
  conference_id     bigint PRIMARY KEY REFERENCES conferences (id),
  name              text NOT NULL,
  owner             text NOT NULL,
  bridge_id         bigint,
  bridge_name       text,
  room              bigint NOT NULL,
  reserved_start    timestamptz NOT NULL,
  reserved_end      timestamptz NOT NULL,
  actual_start      timestamptz,
  actual_end        timestamptz NOT NULL,
  ports             integer NOT NULL,
  peak_participants integer NOT NULL,
  legs              integer NOT NULL,
  end_cause         text NOT NULL,
  final_state       text NOT NULL
);
CREATE INDEX conference_cdrs_end_idx ON conference_cdrs (actual_end);
