// Operator only: mint a portal link for a tenant (shown once), list live sessions, revoke them.
import { useState } from "preact/hooks";
import { api, type Page, type PortalSession } from "../api.ts";
import { Copyable, Empty, ErrorBox, Loading, Outcome, Table, Time } from "../common/bits.tsx";
import { useAction } from "../common/use-action.ts";
import { useResource } from "../common/use-resource.ts";
import { localTime } from "../format.ts";

const CAPABILITIES = [
  { name: "manage_webhooks", label: "Manage webhooks (create, edit, delete, rotate)" },
  { name: "replay", label: "Replay (retry, recover, send test events)" },
];

export function PortalSessions() {
  const sessions = useResource(
    () => api<Page<PortalSession> | { data: PortalSession[] }>("GET", "/v1/portal-sessions"),
    [],
  );
  const [tenant, setTenant] = useState("");
  const [mode, setMode] = useState("live");
  const [ttl, setTtl] = useState("3600");
  const [caps, setCaps] = useState<string[]>(["manage_webhooks", "replay"]);
  const [minted, setMinted] = useState<PortalSession | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const { outcome: message, run } = useAction();
  const mint = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setMinted(null);
    try {
      const session = await api<PortalSession>("POST", "/v1/portal-sessions", {
        tenant_id: tenant.trim(),
        mode,
        ttl_seconds: Number(ttl),
        capabilities: ["read", ...caps],
      });
      setMinted(session);
      sessions.reload();
    } catch (problem) {
      setError(problem);
    }
  };
  const revoke = (work: () => Promise<string>) =>
    run(async () => {
      const text = await work();
      sessions.reload();
      return { text };
    });
  return (
    <section>
      <h1>Portal sessions</h1>
      <p>
        A portal link lets one tenant's team see and manage their own webhooks, for a limited time, without an
        API key.
      </p>
      <form class="panel form" onSubmit={mint}>
        <h2>Mint a portal link</h2>
        <div class="row">
          <div class="field">
            <label for="ps-tenant">Tenant</label>
            <input
              id="ps-tenant"
              required
              value={tenant}
              onInput={(e) => setTenant((e.target as HTMLInputElement).value)}
            />
          </div>
          <div class="field">
            <label for="ps-mode">Mode</label>
            <select
              id="ps-mode"
              value={mode}
              onChange={(e) => setMode((e.target as HTMLSelectElement).value)}
            >
              <option value="live">live</option>
              <option value="test">test</option>
            </select>
          </div>
          <div class="field">
            <label for="ps-ttl">Valid for</label>
            <select id="ps-ttl" value={ttl} onChange={(e) => setTtl((e.target as HTMLSelectElement).value)}>
              <option value="900">15 minutes</option>
              <option value="3600">1 hour</option>
              <option value="28800">8 hours</option>
              <option value="86400">24 hours</option>
            </select>
          </div>
        </div>
        <fieldset class="field">
          <legend>Capabilities</legend>
          <label class="check">
            <input type="checkbox" checked disabled /> Read (always)
          </label>
          {CAPABILITIES.map((c) => (
            <label key={c.name} class="check">
              <input
                type="checkbox"
                checked={caps.includes(c.name)}
                onChange={(e) =>
                  setCaps(
                    (e.target as HTMLInputElement).checked
                      ? [...caps, c.name]
                      : caps.filter((x) => x !== c.name),
                  )
                }
              />
              {c.label}
            </label>
          ))}
        </fieldset>
        <ErrorBox error={error} what="No link made" />
        <button type="submit" class="button primary">
          Mint link
        </button>
        {minted?.url && (
          <div class="reveal" role="status">
            <h3>Portal link for {minted.tenant_id}</h3>
            <Copyable value={minted.url} what="portal link" />
            <p>
              Shown once. It signs its opener in until <TimeText iso={minted.expires_at} />; revoke it below
              to end it sooner.
            </p>
          </div>
        )}
      </form>
      <h2>Live sessions</h2>
      {message && <Outcome ok={message.ok}>{message.text}</Outcome>}
      {sessions.loading && !sessions.data && <Loading what="portal sessions" />}
      <ErrorBox error={sessions.error} what="Portal sessions could not be loaded" />
      {sessions.data && sessions.data.data.length === 0 && (
        <Empty>No live portal session. Mint a link above.</Empty>
      )}
      {sessions.data && sessions.data.data.length > 0 && (
        <Table columns={["Session", "Tenant", "Capabilities", "Expires", "Revoke"]}>
          {sessions.data.data.map((s) => (
            <tr key={s.id}>
              <td>
                <Copyable value={s.id} what="session id" />
              </td>
              <td class="mono">
                {s.tenant_id === null ? "console (every tenant)" : s.tenant_id} · {s.mode}
              </td>
              <td>{s.capabilities.join(", ")}</td>
              <td>
                <Time iso={s.expires_at} />
              </td>
              <td class="cell-actions">
                <button
                  type="button"
                  class="button small"
                  aria-label={`Revoke session ${s.id}`}
                  onClick={() =>
                    revoke(async () => {
                      await api("DELETE", `/v1/portal-sessions/${s.id}`);
                      return `Session ${s.id} revoked.`;
                    })
                  }
                >
                  Revoke
                </button>
                {s.tenant_id !== null && (
                  <button
                    type="button"
                    class="button small"
                    aria-label={`Revoke all of tenant ${s.tenant_id}`}
                    onClick={() =>
                      revoke(async () => {
                        const answer = await api<{ revoked: number }>("POST", "/v1/portal-sessions/revoke", {
                          tenant_id: s.tenant_id,
                        });
                        return `${answer.revoked} sessions of ${s.tenant_id} revoked.`;
                      })
                    }
                  >
                    Revoke all of tenant
                  </button>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}

function TimeText({ iso }: { iso: string }) {
  return (
    <time dateTime={iso} title={`${iso} (UTC)`}>
      {localTime(iso)}
    </time>
  );
}
