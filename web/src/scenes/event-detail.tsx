// One event: its payload and its deliveries.
import { api, type EventDetail as EventRecord } from "../api.ts";
import { Copyable, ErrorBox, Fact, Link, Loading, Pre, StatusBadge, Time } from "../common/bits.tsx";
import { useResource } from "../common/use-resource.ts";
import { prettyJson } from "../format.ts";
import { href } from "../router.ts";
import { DeliveriesTable } from "./deliveries-table.tsx";

export function EventDetail({ id }: { id: string }) {
  const event = useResource(() => api<EventRecord>("GET", `/v1/events/${id}`), [id]);
  const crumbs = (
    <p class="crumbs">
      <Link to={href("events")}>Events</Link>
    </p>
  );
  if (event.loading && !event.data) return <Loading what="the event" />;
  if (!event.data)
    return (
      <section>
        {crumbs}
        <h1>Event</h1>
        <ErrorBox error={event.error} what="This event could not be loaded" />
      </section>
    );
  const e = event.data;
  return (
    <section>
      {crumbs}
      <div class="heading">
        <h1 class="mono">{e.type}</h1>
        <StatusBadge status={e.status} />
      </div>
      <dl class="facts">
        <Fact term="Id">
          <Copyable value={e.id} what="event id" />
        </Fact>
        <Fact term="Account" mono>
          {e.account_id ?? "—"}
        </Fact>
        <Fact term="Tenant" mono>
          {e.tenant_id}
          {e.mode ? ` · ${e.mode}` : ""}
        </Fact>
        <Fact term="Created">
          <Time iso={e.created_at} />
        </Fact>
        <Fact term="Deliveries">
          {Object.entries(e.deliveries)
            .filter(([name, n]) => name !== "total" && n > 0)
            .map(([name, n]) => `${n} ${name}`)
            .join(", ") || "none"}
        </Fact>
      </dl>
      <h2>Payload</h2>
      <Pre text={prettyJson(e.data)} label="Event data" />
      <h2>Deliveries</h2>
      <DeliveriesTable
        path="/v1/deliveries"
        query={{ event_id: e.id }}
        filterable={false}
        emptyText="No webhook subscribed to this event when it was published."
      />
    </section>
  );
}
