// A list of deliveries with its status filter and pages, the filter and cursors in the address.
import { api, DELIVERY_STATUSES, type Delivery, type Page, withQuery } from "../api.ts";
import {
  Empty,
  ErrorBox,
  IdLink,
  Loading,
  Pager,
  RowLink,
  StatusBadge,
  Table,
  Time,
} from "../common/bits.tsx";
import { FilterSelect } from "../common/filters.tsx";
import { useResource } from "../common/use-resource.ts";
import { href, pageCursors, route } from "../router.ts";

const STATUS_OPTIONS = DELIVERY_STATUSES.map((s) => ({ value: s, text: s }));

export function DeliveriesTable({
  path,
  query = {},
  emptyText,
  filterable = true,
  reloadKey = 0,
}: {
  path: string;
  query?: Record<string, string>;
  emptyText: string;
  filterable?: boolean;
  reloadKey?: number;
}) {
  const q = route.value.query;
  const status = filterable ? (q.get("status") ?? "") : "";
  const { after, before } = pageCursors(q);
  const page = useResource(
    () => api<Page<Delivery>>("GET", withQuery(path, { ...query, status, after, before })),
    [path, status, after, before, reloadKey],
  );
  return (
    <div>
      {filterable && (
        <div class="filters">
          <FilterSelect label="Status" name="status" value={status} options={STATUS_OPTIONS} />
        </div>
      )}
      {page.loading && !page.data && <Loading what="deliveries" />}
      <ErrorBox error={page.error} what="Deliveries could not be loaded" />
      {page.data && page.data.data.length === 0 && (
        <Empty>{status ? `No ${status} deliveries. Choose another status, or All.` : emptyText}</Empty>
      )}
      {page.data && page.data.data.length > 0 && (
        <Table columns={["Delivery", "Event type", "Status", "Attempts", "Response", "Created"]}>
          {page.data.data.map((d) => (
            <RowLink key={d.id} to={href(`deliveries/${d.id}`)}>
              <td>
                <IdLink id={d.id} to={href(`deliveries/${d.id}`)} what="delivery id" />
              </td>
              <td class="mono">{d.event_type}</td>
              <td>
                <StatusBadge status={d.status} />
              </td>
              <td>{d.attempts}</td>
              <td>{d.response_status_code ?? "—"}</td>
              <td>
                <Time iso={d.created_at} />
              </td>
            </RowLink>
          ))}
        </Table>
      )}
      {page.data && <Pager page={page.data} />}
    </div>
  );
}
