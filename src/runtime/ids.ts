// Time-sortable identifiers: a ULID body (48-bit millisecond time + 80 random bits, Crockford
// base32) behind a resource prefix. Within one millisecond the random part is incremented, so ids
// minted by one process sort in creation order.
import type { Clock } from "./clock.ts";
import type { Random } from "./random.ts";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export type IdPrefix = "wh" | "evt" | "dlv" | "atm" | "msg";

export interface IdGenerator {
  next(prefix: IdPrefix): string;
}

export function createIdGenerator(clock: Clock, random: Random): IdGenerator {
  let lastTime = -1;
  let lastRandom: Uint8Array = new Uint8Array(10);

  return {
    next(prefix) {
      const now = Math.max(clock.now(), lastTime);
      if (now === lastTime) {
        lastRandom = increment(lastRandom);
      } else {
        lastTime = now;
        lastRandom = random.bytes(10);
      }
      return `${prefix}_${encodeTime(now)}${encodeRandom(lastRandom)}`;
    },
  };
}

function encodeTime(ms: number): string {
  let out = "";
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[rest % 32] + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits → 16 base32 characters, most significant first.
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

function increment(bytes: Uint8Array): Uint8Array {
  const next = new Uint8Array(bytes);
  for (let i = next.length - 1; i >= 0; i--) {
    const value = (next[i] ?? 0) + 1;
    next[i] = value & 0xff;
    if (value <= 0xff) break;
  }
  return next;
}
