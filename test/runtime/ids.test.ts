// Identifiers: the encodings against a plain BigInt base32 of the same bits, and ids of one
// generator sorting in creation order, within a millisecond and across them.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { createManualClock } from "../../src/runtime/clock.ts";
import { createIdGenerator, encodeRandom, encodeTime } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const base32 = (value: bigint, length: number) => {
  let out = "";
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(value % 32n)] + out;
    value /= 32n;
  }
  return out;
};

test("the time and random parts are the Crockford base32 of their bits, most significant first", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (ms) => {
      expect(encodeTime(ms)).toBe(base32(BigInt(ms), 10));
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 10, maxLength: 10 }), (bytes) => {
      const value = bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
      expect(encodeRandom(bytes)).toBe(base32(value, 16));
    }),
  );
  expect(encodeRandom(new Uint8Array(10).fill(255))).toBe("Z".repeat(16));
});

test("one generator's ids sort in creation order, within a millisecond and across them", () => {
  const clock = createManualClock(1_700_000_000_000);
  const ids = createIdGenerator(clock, cryptoRandom);
  const made: string[] = [];
  for (let i = 0; i < 2000; i++) {
    if (i % 500 === 0) clock.advance(1);
    made.push(ids.next("evt"));
  }
  expect([...made].sort()).toEqual(made);
  expect(new Set(made).size).toBe(made.length);
  expect(made[0]).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
});
