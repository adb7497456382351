// Live and test mode (SPEC §2 Live and test mode; the seed's "account type"): every credential has
// one, every webhook and event carries its creator's, and nothing crosses from one to the other.
export const MODES = ["live", "test"] as const;
export type Mode = (typeof MODES)[number];

export const DEFAULT_MODE: Mode = "live";
