-- hookd schema for PostgreSQL, version 3: delivery controls on subscriptions (SPEC §2 Webhooks, §3),
-- the same columns as SQLite version 4. filter: the JSON filter matched at fan-out (JSON text),
-- NULL for none. ordering and rate_limit are read by the claim. signature_scheme says what `secret`
-- holds: a whsec_ secret (v1) or a whsk_ Ed25519 private key (v1a).
ALTER TABLE webhooks ADD COLUMN filter text;
ALTER TABLE webhooks ADD COLUMN ordering text NOT NULL DEFAULT 'unordered';
ALTER TABLE webhooks ADD COLUMN rate_limit integer;
ALTER TABLE webhooks ADD COLUMN signature_scheme text NOT NULL DEFAULT 'v1';
