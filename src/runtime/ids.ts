// Time-sortable identifiers: a ULID body (48-bit millisecond time + 80 random bits, Crockford
// base32) behind a resource prefix. Within one millisecond the random part is incremented, so ids
// minted by one process sort in creation order.
import type { Clock } from "./clock.ts";
import type { Random } from "./random.ts";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export type IdPrefix = "wh" | "evt" | "dlv" | "atm" | "msg" | "ps";

export interface IdGenerator {
  next(prefix: IdPrefix): string;
}

export function createIdGenerator(clock: Clock, random: Random): IdGenerator {
  let lastTime = -1;
  let lastRandom: Uint8Array = new Uint8Array(10);
  // The time part is the same for every id of a millisecond: encoded once per millisecond.
  let timePart = "";

  return {
    next(prefix) {
      const now = Math.max(clock.now(), lastTime);
      if (now === lastTime) {
        lastRandom = increment(lastRandom);
      } else {
        lastTime = now;
        lastRandom = random.bytes(10);
        timePart = encodeTime(now);
      }
      return `${prefix}_${timePart}${encodeRandom(lastRandom)}`;
    },
  };
}

const CODES = Array.from(ALPHABET, (c) => c.charCodeAt(0));

/** 48-bit milliseconds → 10 base32 characters, most significant first. */
export function encodeTime(ms: number): string {
  const out = new Array<number>(10);
  let rest = ms;
  for (let i = 9; i >= 0; i--) {
    out[i] = CODES[rest % 32] as number;
    rest = Math.floor(rest / 32);
  }
  return String.fromCharCode(...out);
}

/** 80 bits → 16 base32 characters, most significant first: 5 bytes make 8 characters. */
export function encodeRandom(bytes: Uint8Array): string {
  const out = new Array<number>(16);
  for (let offset = 0, at = 0; offset < 10; offset += 5, at += 8) {
    // 40 bits as a high byte and a low 32-bit word: each character takes 5 of them.
    const high = bytes[offset] as number;
    const low =
      (((bytes[offset + 1] as number) << 24) |
        ((bytes[offset + 2] as number) << 16) |
        ((bytes[offset + 3] as number) << 8) |
        (bytes[offset + 4] as number)) >>>
      0;
    out[at] = CODES[high >>> 3] as number;
    out[at + 1] = CODES[((high & 7) << 2) | (low >>> 30)] as number;
    for (let i = 0; i < 6; i++) out[at + 2 + i] = CODES[(low >>> (25 - 5 * i)) & 31] as number;
  }
  return String.fromCharCode(...out);
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
