// Console sign-in with an API key or an OAuth2 access token (checked against the API before it is
// kept), and the portal's page for a session that ended or a link that is missing.
import { useEffect, useState } from "preact/hooks";
import { endedMessage, signIn } from "../session.ts";

async function checkCredential(token: string): Promise<string | null> {
  try {
    const response = await fetch("/v1/event-types", {
      headers: { authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    if (response.ok) return null;
    const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
    return body?.error?.message ?? `hookd answered ${response.status}`;
  } catch {
    return "hookd could not be reached. Check that it is running.";
  }
}

export function SignIn() {
  useEffect(() => {
    document.title = "Sign in · hookd console";
  }, []);
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setError("Paste an API key or an access token.");
      return;
    }
    setBusy(true);
    const problem = await checkCredential(value);
    setBusy(false);
    if (problem) setError(`Sign-in failed: ${problem}`);
    else signIn(value);
  };
  return (
    <main class="sign-in" id="main">
      <h1>hookd console</h1>
      {endedMessage.value && (
        <p class="notice" role="status">
          {endedMessage.value}
        </p>
      )}
      <form onSubmit={submit} class="card">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          aria-describedby="api-key-help"
        />
        <p id="api-key-help" class="help">
          An API key from hookd's config, or an OAuth2 access token. It is kept in this tab only and forgotten
          when you sign out or close the tab. <code>hookd console-link</code> prints a link that signs you in
          without one.
        </p>
        {error && (
          <div class="error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" class="button primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

export function PortalEnded() {
  useEffect(() => {
    document.title = "Webhooks portal";
  }, []);
  return (
    <main class="sign-in" id="main">
      <h1>Webhooks portal</h1>
      <div class="card">
        <p role="status">{endedMessage.value ?? "This page opens from a portal link."}</p>
        <p>Ask the service that gave you the link for a new one.</p>
      </div>
    </main>
  );
}
