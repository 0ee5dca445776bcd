-- Accounts, sessions and the audit log: what the appliance needs before anything else.

CREATE TABLE users (
  id                   bigserial PRIMARY KEY,
  username             text NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9._-]{0,63}$'),
  password_hash        text NOT NULL,
  roles                text[] NOT NULL
                         CHECK (cardinality(roles) > 0
                                AND roles <@ ARRAY['admin', 'operator', 'support', 'noc']),
  disabled             boolean NOT NULL DEFAULT false,
  must_change_password boolean NOT NULL DEFAULT false,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);

-- The bearer token itself is never stored: only its SHA-256.
CREATE TABLE sessions (
  token_sha256 text PRIMARY KEY,
  user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  csrf_token   text NOT NULL,
  remote_addr  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- One row per state-changing request: who, what, when, from where, outcome. No bodies.
CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  username    text,
  remote_addr text NOT NULL,
  method      text NOT NULL,
  path        text NOT NULL,
  action      text NOT NULL,
  target      text,
  status      integer NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed'))
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Timestamps leave the API as RFC 3339 in UTC with millisecond precision.
CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
  LANGUAGE sql STABLE
  AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
