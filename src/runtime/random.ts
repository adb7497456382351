// Randomness, injected: ids, secrets and jitter draw from here so tests can make them repeatable.

export interface Random {
  /** Cryptographically strong random bytes. */
  bytes(n: number): Uint8Array;
  /** A float in [0, 1), for jitter. */
  float(): number;
}

export const cryptoRandom: Random = {
  bytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
  float: () => {
    const [word] = crypto.getRandomValues(new Uint32Array(1));
    return (word ?? 0) / 2 ** 32;
  },
};
