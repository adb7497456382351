import { describe, expect, test } from "bun:test";
import { verify } from "node:crypto";
import { decodePublicKey, generateSigningKey, publicKeyOf } from "../../src/domain/secrets.ts";
import { signPayload } from "../../src/domain/signer.ts";
import { verifySignature } from "../../src/domain/verify.ts";

const secret = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
const other = `whsec_${Buffer.alloc(32, 2).toString("base64")}`;
const body = '{"id":"evt_1","type":"invoice.paid","timestamp":"2026-01-01T00:00:00.000Z","data":{"a":1}}';
const now = 1_800_000_000;
const base = { secret, id: "evt_1", timestamp: String(now), body, now, toleranceSeconds: 300 };

describe("verifySignature", () => {
  test("a signature made by hookd's signer verifies", () => {
    const signature = signPayload([secret], "evt_1", now, body);
    expect(verifySignature({ ...base, signature })).toEqual({ valid: true, reason: "the signature matches" });
  });

  test("during a rotation either secret verifies", () => {
    const signature = signPayload([other, secret], "evt_1", now, body);
    const result = verifySignature({ ...base, signature });
    expect(result.valid).toBe(true);
    expect(result.reason).toContain("2 of 2");
  });

  test("the tolerance is inclusive, as in the Standard Webhooks libraries: 300 s either way verifies", () => {
    const signature = signPayload([secret], "evt_1", now, body);
    const at = (clock: number) => verifySignature({ ...base, signature, now: clock }).valid;
    expect(at(now + 300)).toBe(true);
    expect(at(now - 300)).toBe(true);
    expect(at(now + 301)).toBe(false);
    expect(at(now - 301)).toBe(false);
  });

  test("says why it fails", () => {
    const signature = signPayload([secret], "evt_1", now, body);
    const reason = (input: Partial<typeof base> & { signature?: string }) =>
      verifySignature({ ...base, signature, ...input }).reason;
    expect(reason({ now: now + 301 })).toContain("301s in the past");
    expect(reason({ now: now - 400 })).toContain("400s in the future");
    expect(reason({ secret: "abc" })).toContain("does not start with 'whsec_'");
    expect(reason({ secret: "whsec_!!!" })).toContain("not base64");
    expect(reason({ body: `${body}\n` })).toContain("trailing newline");
    expect(reason({ body: JSON.stringify(JSON.parse(body), null, 2) })).toContain("re-serialized");
    expect(reason({ signature: signature.replace("v1,", "v2,") })).toContain("no 'v1,<base64>'");
    expect(reason({ secret: other })).toContain("no signature matches");
    const textKey = Buffer.from(secret.slice(6), "utf8");
    const { createHmac } = require("node:crypto") as typeof import("node:crypto");
    const asText = createHmac("sha256", textKey).update(`evt_1.${now}.${body}`).digest("base64");
    expect(reason({ signature: `v1,${asText}` })).toContain("base64-decode");
  });
});

describe("verifySignature with a public key (v1a, Ed25519)", () => {
  const random = (fill: number) => ({ bytes: (n: number) => new Uint8Array(n).fill(fill), float: () => 0 });
  const key = generateSigningKey(random(3));
  const oldKey = generateSigningKey(random(4));
  const publicKey = publicKeyOf(key);
  const v1a = { ...base, secret: undefined, publicKey };

  test("a signature made by hookd's signer verifies with the public key, and node:crypto agrees", () => {
    const signature = signPayload([key], "evt_1", now, body);
    expect(signature).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/);
    expect(verifySignature({ ...v1a, signature })).toEqual({ valid: true, reason: "the signature matches" });
    const raw = Buffer.from(signature.slice(4), "base64");
    expect(verify(null, Buffer.from(`evt_1.${now}.${body}`), decodePublicKey(publicKey)!, raw)).toBe(true);
  });

  test("during a rotation either public key verifies", () => {
    const signature = signPayload([key, oldKey], "evt_1", now, body);
    expect(signature.split(" ")).toHaveLength(2);
    expect(verifySignature({ ...v1a, signature }).reason).toContain("1 of 2");
    expect(verifySignature({ ...v1a, publicKey: publicKeyOf(oldKey), signature })).toEqual({
      valid: true,
      reason: "signature 2 of 2 matches (a key rotation is in progress)",
    });
  });

  test("says why it fails", () => {
    const signature = signPayload([key], "evt_1", now, body);
    const reason = (input: Partial<typeof v1a> & { signature?: string }) =>
      verifySignature({ ...v1a, signature, ...input }).reason;
    expect(reason({ body: body.replace("1}", "2}") })).toContain("no signature matches");
    expect(reason({ body: body.replace("1}", "2}") })).toContain("public_key");
    expect(reason({ publicKey: publicKeyOf(oldKey) })).toContain("no signature matches");
    expect(reason({ now: now + 301 })).toContain("301s in the past");
    expect(reason({ body: `${body}\n` })).toContain("trailing newline");
    expect(reason({ body: JSON.stringify(JSON.parse(body), null, 2) })).toContain("re-serialized");
    expect(reason({ publicKey: "abc" })).toContain("does not start with 'whpk_'");
    expect(reason({ publicKey: "whpk_AAAA" })).toContain("not base64 of 32 bytes");
    expect(reason({ publicKey: secret })).toContain("verify a v1 webhook with --secret");
    expect(reason({ signature: signPayload([secret], "evt_1", now, body) })).toContain(
      "it has v1 entries, so the webhook signs with HMAC",
    );
    // And the other way round: a secret given for a v1a delivery.
    expect(verifySignature({ ...base, signature }).reason).toContain("it has v1a entries");
    expect(verifySignature({ ...base, secret: publicKey, signature }).reason).toContain("--public-key");
  });
});
