// Webhooks: the list (name, URL, state, 24 h success rate, last attempt) with search and pages.
// Search is the API's (name, URL, id or description, across every page); pages are cursors in the address.
import { useState } from "preact/hooks";
import { api, type Delivery, type Page, type Stats, type Webhook, withQuery } from "../api.ts";
import { capabilities } from "../capabilities.ts";
import {
  CopyButton,
  Empty,
  EnabledBadge,
  ErrorBox,
  Link,
  Loading,
  Pager,
  RowLink,
  Table,
  Time,
} from "../common/bits.tsx";
import { FilterForm, FilterInput, FilterSelect } from "../common/filters.tsx";
import { useResource } from "../common/use-resource.ts";
import { percent } from "../format.ts";
import { href, pageCursors, route } from "../router.ts";

const ENABLED_OPTIONS = [
  { value: "true", text: "Enabled" },
  { value: "false", text: "Disabled" },
];

export function WebhooksList() {
  const query = route.value.query;
  const q = query.get("q") ?? "";
  const enabled = query.get("enabled") ?? "";
  const { after, before } = pageCursors(query);
  const [search, setSearch] = useState(q);
  const page = useResource(
    () =>
      api<Page<Webhook>>("GET", withQuery("/v1/webhooks", { limit: 25, enabled, search: q, after, before })),
    [q, enabled, after, before],
  );
  const rows = page.data?.data ?? [];
  return (
    <section>
      <div class="heading">
        <h1>Webhooks</h1>
        {capabilities.value?.manageWebhooks && (
          <Link to={href("webhooks/new")} class="button primary">
            Create webhook
          </Link>
        )}
      </div>
      <FilterForm label="Search webhooks" onApply={() => ({ q: search.trim() })}>
        <FilterInput
          label="Search"
          type="search"
          value={search}
          placeholder="Name, URL or id"
          onValue={setSearch}
        />
        <FilterSelect label="Enabled" name="enabled" value={enabled} options={ENABLED_OPTIONS} />
        <button type="submit" class="button">
          Search
        </button>
      </FilterForm>
      {page.loading && !page.data && <Loading what="webhooks" />}
      <ErrorBox error={page.error} what="Webhooks could not be loaded" />
      {page.data && page.data.data.length === 0 && q !== "" && (
        <Empty>No webhook matches “{q}”. Clear the search to see them all.</Empty>
      )}
      {page.data && page.data.data.length === 0 && q === "" && (
        <Empty>
          No webhooks yet.{" "}
          {capabilities.value?.manageWebhooks
            ? "Create one to start receiving events."
            : "None has been set up for you yet."}
        </Empty>
      )}
      {rows.length > 0 && (
        <Table columns={["Name", "URL", "State", "Success (24 h)", "Last attempt"]}>
          {rows.map((w) => (
            <RowLink key={w.id} to={href(`webhooks/${w.id}`)}>
              <td>
                <Link to={href(`webhooks/${w.id}`)}>{w.name}</Link>
                <div class="muted mono small">
                  {w.id} <CopyButton value={w.id} what="webhook id" />
                </div>
              </td>
              <td class="url">{w.url}</td>
              <td>
                <EnabledBadge enabled={w.enabled} reason={w.disabled_reason} />
              </td>
              <RowStats id={w.id} />
            </RowLink>
          ))}
        </Table>
      )}
      {page.data && <Pager page={page.data} />}
    </section>
  );
}

/** The 24 h success rate and the last attempt of one webhook (from its stats and newest delivery). */
function RowStats({ id }: { id: string }) {
  const stats = useResource(() => api<Stats>("GET", `/v1/webhooks/${id}/stats?bucket=1d`), [id]);
  const latest = useResource(() => api<Page<Delivery>>("GET", `/v1/webhooks/${id}/deliveries?limit=1`), [id]);
  const last = latest.data?.data[0]?.last_attempt_at ?? null;
  return (
    <>
      <td>{stats.data ? percent(stats.data.totals.success_rate) : "—"}</td>
      <td>{latest.data ? <Time iso={last} /> : "—"}</td>
    </>
  );
}
