import { describe, expect, test } from "bun:test";
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
