-- Run-time settings changed through the API (e.g. the log level) survive a restart.
CREATE TABLE appliance_settings (
  key        text PRIMARY KEY,
  value      text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Shown in the user list so admins can spot unused accounts.
ALTER TABLE users ADD COLUMN last_login_at timestamptz;
