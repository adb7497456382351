-- hookd schema, version 4: delivery controls on subscriptions (SPEC §2 Webhooks, §3).
-- filter: the JSON filter matched at fan-out, NULL for none. ordering and rate_limit are read by
-- the claim. signature_scheme says what `secret` holds: a whsec_ secret (v1) or a whsk_ Ed25519
-- private key (v1a); previous secrets of a v1a subscription are whsk_ keys too.
ALTER TABLE webhooks ADD COLUMN filter TEXT;
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'unordered';
ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER;
ALTER TABLE webhooks ADD COLUMN signature_scheme TEXT NOT NULL DEFAULT 'v1';
