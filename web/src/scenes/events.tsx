// Events: the list with type, status and date filters, all in the address.
import { useState } from "preact/hooks";
import { api, EVENT_STATUSES, type EventSummary, type EventType, type Page, withQuery } from "../api.ts";
import { Empty, ErrorBox, IdLink, Loading, Pager, RowLink, Time } from "../common/bits.tsx";
import { useResource } from "../common/use-resource.ts";
import { isoToLocalInput, localInputToIso } from "../format.ts";
import { href, route, setQuery } from "../router.ts";

export function EventsList() {
  const query = route.value.query;
  const type = query.get("type") ?? "";
  const status = query.get("status") ?? "";
  const from = query.get("from") ?? "";
  const to = query.get("to") ?? "";
  const after = query.get("after") ?? "";
  const before = query.get("before") ?? "";
  const [draft, setDraft] = useState({ type, from: isoToLocalInput(from), to: isoToLocalInput(to) });
  const catalog = useResource(() => api<{ data: EventType[] }>("GET", "/v1/event-types"), []);
  const page = useResource(
    () => api<Page<EventSummary>>("GET", withQuery("/v1/events", { type, status, from, to, after, before })),
    [type, status, from, to, after, before],
  );
  const filtered = Boolean(type || status || from || to);
  const apply = (event: Event) => {
    event.preventDefault();
    setQuery(
      {
        type: draft.type.trim(),
        from: localInputToIso(draft.from),
        to: localInputToIso(draft.to),
        after: null,
        before: null,
      },
      { push: true },
    );
  };
  return (
    <section>
      <h1>Events</h1>
      <form class="filters" onSubmit={apply} aria-label="Filter events">
        <label>
          Type
          <input
            list="event-type-names"
            value={draft.type}
            placeholder="invoice.paid"
            onInput={(e) => setDraft({ ...draft, type: (e.target as HTMLInputElement).value })}
          />
        </label>
        <datalist id="event-type-names">
          {(catalog.data?.data ?? []).map((t) => (
            <option key={t.name} value={t.name} />
          ))}
        </datalist>
        <label>
          Status
          <select
            value={status}
            onChange={(e) =>
              setQuery(
                { status: (e.target as HTMLSelectElement).value, after: null, before: null },
                { push: true },
              )
            }
          >
            <option value="">All</option>
            {EVENT_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace("_", " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          From
          <input
            type="datetime-local"
            value={draft.from}
            onInput={(e) => setDraft({ ...draft, from: (e.target as HTMLInputElement).value })}
          />
        </label>
        <label>
          To
          <input
            type="datetime-local"
            value={draft.to}
            onInput={(e) => setDraft({ ...draft, to: (e.target as HTMLInputElement).value })}
          />
        </label>
        <button type="submit" class="button">
          Apply filters
        </button>
        {filtered && (
          <button
            type="button"
            class="button"
            onClick={() => {
              setDraft({ type: "", from: "", to: "" });
              setQuery(
                { type: null, status: null, from: null, to: null, after: null, before: null },
                { push: true },
              );
            }}
          >
            Clear filters
          </button>
        )}
      </form>
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
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Type</th>
                <th scope="col">Account</th>
                <th scope="col">Deliveries</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
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
            </tbody>
          </table>
        </div>
      )}
      {page.data && (
        <Pager
          page={page.data}
          onPage={(cursor) => setQuery({ after: cursor.after, before: cursor.before }, { push: true })}
        />
      )}
    </section>
  );
}
