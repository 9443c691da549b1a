-- The PostgreSQL status store (vmprep/server/pgstore.py), as of vmprep 0.x (issue 17).
-- Applied by `vmprep db upgrade --store URL` (vmprep/server/migrate.py), in one transaction,
-- which also records version 1 in schema_version. Text keys use the "C" collation: byte
-- order, as SQLite compares, so both stores sort and page the dashboard alike.

-- Serials: one sequence for every (role, target), shared by every replica; nextval never
-- goes back, across replicas and restarts.
CREATE SEQUENCE serials AS bigint;

CREATE TABLE documents (
    role text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL,
    digest text NOT NULL,
    first_serial bigint NOT NULL,
    serial bigint NOT NULL,
    issued_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (role, target)
);

CREATE TABLE issued (
    serial bigint PRIMARY KEY,
    role text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL,
    digest text NOT NULL
);

CREATE TABLE reports (
    report_id text COLLATE "C" PRIMARY KEY,
    instance_id text COLLATE "C" NOT NULL,
    received_at double precision NOT NULL,
    sent double precision NOT NULL,
    body text NOT NULL
);
CREATE INDEX reports_by_instance ON reports (instance_id, sent);
CREATE INDEX reports_by_received ON reports (received_at);

CREATE TABLE instances (
    instance_id text COLLATE "C" PRIMARY KEY,
    role text COLLATE "C",
    computer_name text,
    agent_version text,
    config_serial bigint,
    state text COLLATE "C",
    steps_done integer,
    steps_failed integer,
    steps_total integer,
    error text,
    report_id text COLLATE "C",
    sent_at text,
    received_at double precision,
    sent double precision,
    inputs text
);
CREATE INDEX instances_by_state ON instances (state, sent, instance_id);
CREATE INDEX instances_by_role ON instances (role, state, sent, instance_id);
CREATE INDEX instances_by_sent ON instances (sent, instance_id);
CREATE INDEX instances_by_report ON instances (report_id);

CREATE TABLE served (
    instance_id text COLLATE "C" NOT NULL,
    serial bigint NOT NULL,
    role text COLLATE "C" NOT NULL,
    first_at double precision NOT NULL,
    last_at double precision NOT NULL,
    times bigint NOT NULL,
    PRIMARY KEY (instance_id, serial)
);
CREATE INDEX served_by_role ON served (role, instance_id);
