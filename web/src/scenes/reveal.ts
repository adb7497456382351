// A secret (or public key) just made by a create or a rotation: shown once on the webhook's page,
// kept in memory only, and gone when that page is left or reloaded.
import { signal } from "@preact/signals";

export interface Revealed {
  webhookId: string;
  secret?: string;
  publicKey?: string;
  why: "created" | "rotated";
}

export const revealed = signal<Revealed | null>(null);
