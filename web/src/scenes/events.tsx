// Events: the list with type, status and date filters, all in the address.
import { useState } from "preact/hooks";
import { api, EVENT_STATUSES, type EventSummary, type EventType, type Page, withQuery } from "../api.ts";
import { Empty, ErrorBox, IdLink, Loading, Pager, RowLink, Table, Time } from "../common/bits.tsx";
import { FilterForm, FilterInput, FilterSelect } from "../common/filters.tsx";
import { useResource } from "../common/use-resource.ts";
import { isoToLocalInput, localInputToIso } from "../format.ts";
import { href, pageCursors, route, setFilters } from "../router.ts";

const STATUS_OPTIONS = EVENT_STATUSES.map((s) => ({ value: s, text: s.replace("_", " ") }));

export function EventsList() {
  const query = route.value.query;
  const type = query.get("type") ?? "";
  const status = query.get("status") ?? "";
  const from = query.get("from") ?? "";
  const to = query.get("to") ?? "";
  const { after, before } = pageCursors(query);
  const [draft, setDraft] = useState({ type, from: isoToLocalInput(from), to: isoToLocalInput(to) });
  const catalog = useResource(() => api<{ data: EventType[] }>("GET", "/v1/event-types"), []);
  const page = useResource(
    () => api<Page<EventSummary>>("GET", withQuery("/v1/events", { type, status, from, to, after, before })),
    [type, status, from, to, after, before],
  );
  const filtered = Boolean(type || status || from || to);
  return (
    <section>
      <h1>Events</h1>
      <FilterForm
        label="Filter events"
        onApply={() => ({
          type: draft.type.trim(),
          from: localInputToIso(draft.from),
          to: localInputToIso(draft.to),
        })}
      >
        <FilterInput
          label="Type"
          list="event-type-names"
          value={draft.type}
          placeholder="invoice.paid"
          onValue={(value) => setDraft({ ...draft, type: value })}
        />
        <datalist id="event-type-names">
          {(catalog.data?.data ?? []).map((t) => (
            <option key={t.name} value={t.name} />
          ))}
        </datalist>
        <FilterSelect label="Status" name="status" value={status} options={STATUS_OPTIONS} />
        <FilterInput
          label="From"
          type="datetime-local"
          value={draft.from}
          onValue={(value) => setDraft({ ...draft, from: value })}
        />
        <FilterInput
          label="To"
          type="datetime-local"
          value={draft.to}
          onValue={(value) => setDraft({ ...draft, to: value })}
        />
        <button type="submit" class="button">
          Apply filters
        </button>
        {filtered && (
          <button
            type="button"
            class="button"
            onClick={() => {
              setDraft({ type: "", from: "", to: "" });
              setFilters({ type: null, status: null, from: null, to: null });
            }}
          >
            Clear filters
          </button>
        )}
      </FilterForm>
      {page.loading && !page.data && <Loading what="events" />}
      <ErrorBox error={page.error} what="Events could not be loaded" />
      {page.data && page.data.data.length === 0 && (
        <Empty>
          {filtered
            ? "No event matches these filters. Clear them or widen the dates."
            : "No events yet. Your application publishes them with POST /v1/events."}
        </Empty>
      )}
      {page.data && page.data.data.length > 0 && (
        <Table columns={["Event", "Type", "Account", "Deliveries", "Created"]}>
          {page.data.data.map((e) => (
            <RowLink key={e.id} to={href(`events/${e.id}`)}>
              <td>
                <IdLink id={e.id} to={href(`events/${e.id}`)} what="event id" />
              </td>
              <td class="mono">{e.type}</td>
              <td class="mono">{e.account_id ?? "—"}</td>
              <td>{e.deliveries_count}</td>
              <td>
                <Time iso={e.created_at} />
              </td>
            </RowLink>
          ))}
        </Table>
      )}
      {page.data && <Pager page={page.data} />}
    </section>
  );
}
