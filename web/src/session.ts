// The signed-in credential and what kind of page holds it. The credential lives in this tab's
// sessionStorage only (SPEC §7): never a cookie, never the URL after sign-in.
import { signal } from "@preact/signals";

export type AppKind = "console" | "portal";

const STORAGE_KEY = "hookd.credential";

export const appKind: AppKind = location.pathname.startsWith("/portal") ? "portal" : "console";
export const basePath = appKind === "portal" ? "/portal" : "/console";

function readStored(): string | null {
  try {
    return sessionStorage.getItem(`${STORAGE_KEY}.${appKind}`);
  } catch {
    return null;
  }
}

export const credential = signal<string | null>(readStored());
/** Why the last session ended (a 401, a sign-out), shown on the sign-in or ended page. */
export const endedMessage = signal<string | null>(null);

export function signIn(token: string): void {
  sessionStorage.setItem(`${STORAGE_KEY}.${appKind}`, token);
  endedMessage.value = null;
  credential.value = token;
}

export function endSession(message: string | null): void {
  sessionStorage.removeItem(`${STORAGE_KEY}.${appKind}`);
  endedMessage.value = message;
  credential.value = null;
}

/**
 * A `#token=…` in the address (a portal link or `hookd console-link`) becomes the session's
 * credential and leaves the address bar at once, before anything renders or is fetched.
 */
export function takeTokenFromAddress(): void {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  const token = decodeURIComponent(match[1] as string);
  history.replaceState(history.state, "", location.pathname + location.search);
  signIn(token);
}
