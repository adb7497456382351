// Operator only: readiness of this instance (/readyz) and the queue (from /v1/stats).
import { api, type Stats } from "../api.ts";
import { ErrorBox, Fact, Loading } from "../common/bits.tsx";
import { useResource } from "../common/use-resource.ts";
import { seconds } from "../format.ts";

interface Readiness {
  status: string;
  driver: string;
  checks: Record<string, string>;
}

async function readiness(): Promise<Readiness> {
  const response = await fetch("/readyz", { cache: "no-store" });
  const body = (await response.json()) as Readiness & { error?: { message: string } };
  if (!response.ok && !body.checks)
    throw new Error(body.error?.message ?? `hookd answered ${response.status}`);
  return body;
}

export function Instances() {
  const ready = useResource(readiness, []);
  const stats = useResource(() => api<Stats>("GET", "/v1/stats?bucket=1h"), []);
  return (
    <section>
      <h1>Instances and queue</h1>
      <h2>This instance</h2>
      {ready.loading && !ready.data && <Loading what="readiness" />}
      <ErrorBox error={ready.error} what="Readiness could not be read" />
      {ready.data && (
        <dl class="facts">
          <Fact term="Status">
            <span class={`badge ${ready.data.status === "ready" ? "status-success" : "status-failed"}`}>
              {ready.data.status ?? "not ready"}
            </span>
          </Fact>
          <Fact term="Storage" mono>
            {ready.data.driver}
          </Fact>
          {Object.entries(ready.data.checks).map(([name, value]) => (
            <Fact key={name} term={name}>
              {value}
            </Fact>
          ))}
        </dl>
      )}
      <button
        type="button"
        class="button"
        onClick={() => {
          ready.reload();
          stats.reload();
        }}
      >
        Refresh
      </button>
      <h2>Queue</h2>
      {stats.loading && !stats.data && <Loading what="the queue" />}
      <ErrorBox error={stats.error} what="The queue could not be read" />
      {stats.data && (
        <dl class="facts">
          <Fact term="Deliveries due">{stats.data.queue.depth}</Fact>
          <Fact term="Oldest due for">{seconds(stats.data.queue.oldest_due_seconds)}</Fact>
          <Fact term="Webhooks">
            {stats.data.webhooks.enabled} enabled, {stats.data.webhooks.disabled} disabled,{" "}
            {stats.data.webhooks.failing} failing
          </Fact>
        </dl>
      )}
      <p class="muted">
        With several instances over PostgreSQL, each answers /readyz for itself; the queue is shared. Every
        instance's metrics are at /metrics.
      </p>
    </section>
  );
}
