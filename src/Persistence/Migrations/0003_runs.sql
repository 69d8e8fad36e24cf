-- Run and evaluation records, searched by model, version, agent, status, kind, time and labels; newest first.
CREATE TABLE IF NOT EXISTS carml_runs
(
    id text NOT NULL PRIMARY KEY,
    kind text NOT NULL,
    model text NOT NULL,
    version text NOT NULL,
    agent text,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    labels jsonb NOT NULL DEFAULT '{}',
    record jsonb NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_carml_runs_created ON carml_runs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS ix_carml_runs_model ON carml_runs (model, version, created_at DESC);
CREATE INDEX IF NOT EXISTS ix_carml_runs_kind_status ON carml_runs (kind, status, created_at DESC);
CREATE INDEX IF NOT EXISTS ix_carml_runs_labels ON carml_runs USING gin (labels);
