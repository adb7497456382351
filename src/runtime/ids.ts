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
    out = (ALPHABET[rest % 32] as string) + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

/** 80 bits → 16 base32 characters, most significant first: 5 bytes make 8 characters. */
function encodeRandom(bytes: Uint8Array): string {
  let out = "";
  for (let offset = 0; offset < 10; offset += 5) {
    // 40 bits fit a double exactly: split as a high byte and a low 32-bit word.
    const high = bytes[offset] as number;
    const low =
      (((bytes[offset + 1] as number) << 24) >>> 0) +
      ((bytes[offset + 2] as number) << 16) +
      ((bytes[offset + 3] as number) << 8) +
      (bytes[offset + 4] as number);
    let value = high * 2 ** 32 + low;
    let chunk = "";
    for (let i = 0; i < 8; i++) {
      chunk = (ALPHABET[value % 32] as string) + chunk;
      value = Math.floor(value / 32);
    }
    out += chunk;
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
