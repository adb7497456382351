// Overview: events and attempts of the last 24 hours, success rate, queue, webhooks by state.
import { api, type Stats } from "../api.ts";
import { ErrorBox, Link, Loading } from "../common/bits.tsx";
import { StatsChart } from "../common/chart.tsx";
import { useResource } from "../common/use-resource.ts";
import { ms, percent, seconds } from "../format.ts";
import { href } from "../router.ts";

export function Overview() {
  const stats = useResource(() => api<Stats>("GET", "/v1/stats?bucket=1h"), []);
  return (
    <section>
      <h1>Overview</h1>
      <p class="muted">The last 24 hours, in hourly buckets.</p>
      {stats.loading && !stats.data && <Loading what="statistics" />}
      <ErrorBox error={stats.error} what="Statistics could not be loaded" />
      {stats.data && <StatsPanel stats={stats.data} />}
    </section>
  );
}

export function StatsPanel({ stats, scope = "all" }: { stats: Stats; scope?: "all" | "webhook" }) {
  const t = stats.totals;
  return (
    <>
      <div class="tiles">
        <Tile label="Events" value={String(t.events)} />
        <Tile label="Attempts" value={String(t.attempts)} />
        <Tile label="Success rate" value={percent(t.success_rate)} />
        <Tile label="p50 / p95" value={`${ms(t.p50_ms)} / ${ms(t.p95_ms)}`} />
        <Tile label="Queue depth" value={String(stats.queue.depth)} />
        <Tile label="Oldest due" value={seconds(stats.queue.oldest_due_seconds)} />
        {scope === "all" && (
          <>
            <Tile label="Webhooks enabled" value={String(stats.webhooks.enabled)} />
            <Tile label="Disabled" value={String(stats.webhooks.disabled)} />
            <Tile label="Failing" value={String(stats.webhooks.failing)} />
          </>
        )}
      </div>
      <StatsChart stats={stats} label={scope === "all" ? "All webhooks" : "This webhook"} />
      {scope === "all" && t.events === 0 && (
        <p class="empty">
          No events in the last 24 hours. Publish one with <code>POST /v1/events</code>, or{" "}
          <Link to={href("webhooks/new")}>create a webhook</Link> first.
        </p>
      )}
    </>
  );
}

function Tile({ label, value }: { label: string; value: string }) {
  return (
    <div class="tile">
      <div class="tile-label">{label}</div>
      <div class="tile-value">{value}</div>
    </div>
  );
}
