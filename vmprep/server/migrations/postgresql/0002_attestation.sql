-- Attestation state (issue #15, docs/attestation.md), shared by every replica: the challenge
-- nonces handed out (single use, bound to an instance, short-lived) and which attestation
-- admitted each instance. Same tables as the SQLite store's ATTESTATION_SCHEMA.
CREATE TABLE nonces (
    nonce text COLLATE "C" PRIMARY KEY,
    instance_id text COLLATE "C" NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX nonces_by_instance ON nonces (instance_id, expires_at);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE attestations (
    instance_id text COLLATE "C" PRIMARY KEY,
    role text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    attested_id text NOT NULL,
    scope text,
    issued_at double precision NOT NULL,
    first_at double precision NOT NULL,
    last_at double precision NOT NULL,
    admitted integer NOT NULL
);
