// One delivery: the payload sent, the signature, every attempt, and retry.
import { type Attempt, api, type Delivery, type Page, withQuery } from "../api.ts";
import { capabilities } from "../capabilities.ts";
import {
  Copyable,
  Empty,
  ErrorBox,
  Fact,
  Link,
  Loading,
  Outcome,
  Pager,
  Pairs,
  Pre,
  StatusBadge,
  Time,
} from "../common/bits.tsx";
import { useAction } from "../common/use-action.ts";
import { useResource } from "../common/use-resource.ts";
import { ms, prettyBody } from "../format.ts";
import { href, pageCursors } from "../router.ts";

export function DeliveryView({ id }: { id: string }) {
  const delivery = useResource(() => api<Delivery>("GET", `/v1/deliveries/${id}`), [id]);
  const { busy, outcome: message, run } = useAction();
  const crumbs = (
    <p class="crumbs">
      <Link to={href("events")}>Events</Link>
      {delivery.data && (
        <>
          {" / "}
          <Link to={href(`events/${delivery.data.event_id}`)}>Event</Link>
          {" / "}
          <Link to={href(`webhooks/${delivery.data.webhook_id}`)}>Webhook</Link>
        </>
      )}
    </p>
  );
  if (delivery.loading && !delivery.data) return <Loading what="the delivery" />;
  if (!delivery.data)
    return (
      <section>
        {crumbs}
        <h1>Delivery</h1>
        <ErrorBox error={delivery.error} what="This delivery could not be loaded" />
      </section>
    );
  const d = delivery.data;
  const retry = () =>
    run(async () => {
      await api("POST", `/v1/deliveries/${d.id}/retry`);
      delivery.reload();
      return { text: "Queued again: a new attempt starts now." };
    });
  return (
    <section>
      {crumbs}
      <div class="heading">
        <h1>
          Delivery <span class="mono">{d.event_type}</span>
        </h1>
        <StatusBadge status={d.status} />
      </div>
      <dl class="facts">
        <Fact term="Id">
          <Copyable value={d.id} what="delivery id" />
        </Fact>
        <Fact term="Event">
          <Link to={href(`events/${d.event_id}`)} class="mono">
            {d.event_id}
          </Link>
        </Fact>
        <Fact term="Webhook">
          <Link to={href(`webhooks/${d.webhook_id}`)} class="mono">
            {d.webhook_id}
          </Link>
        </Fact>
        <Fact term="Attempts">{d.attempts}</Fact>
        <Fact term="Last response">{d.response_status_code ?? "—"}</Fact>
        <Fact term="Last attempt">
          <Time iso={d.last_attempt_at} />
        </Fact>
        <Fact term="Next attempt">
          <Time iso={d.next_retry_at} />
        </Fact>
        <Fact term="Created">
          <Time iso={d.created_at} />
        </Fact>
      </dl>
      {capabilities.value?.replay && (
        <div class="actions">
          <button type="button" class="button" disabled={busy} onClick={retry}>
            Retry
          </button>
          {message && <Outcome ok={message.ok}>{message.text}</Outcome>}
        </div>
      )}
      <h2>Signature</h2>
      {d.signature ? <Copyable value={d.signature} what="signature" /> : <p class="muted">Not sent yet.</p>}
      <h2>Payload sent</h2>
      <Pre text={prettyBody(d.payload)} label="Payload sent" />
      <h2>Attempts</h2>
      <Attempts id={d.id} reloadKey={`${d.attempts}-${d.status}`} />
    </section>
  );
}

function Attempts({ id, reloadKey }: { id: string; reloadKey: string }) {
  const { after, before } = pageCursors();
  const page = useResource(
    () => api<Page<Attempt>>("GET", withQuery(`/v1/deliveries/${id}/attempts`, { after, before, limit: 50 })),
    [id, after, before, reloadKey],
  );
  if (page.loading && !page.data) return <Loading what="attempts" />;
  if (!page.data) return <ErrorBox error={page.error} what="Attempts could not be loaded" />;
  if (page.data.data.length === 0) return <Empty>No attempt yet: it is queued and goes out shortly.</Empty>;
  return (
    <>
      <ol class="attempts">
        {page.data.data.map((a) => (
          <li key={a.id} class="card attempt">
            <div class="attempt-head">
              <Time iso={a.started_at} />
              <span>{ms(a.duration_ms)}</span>
              <span
                class={`badge ${a.response_status_code && a.response_status_code < 300 ? "status-success" : "status-failed"}`}
              >
                {a.response_status_code ?? "no response"}
              </span>
              {a.error && <span class="badge status-failed">{a.error}</span>}
            </div>
            <details>
              <summary>Response headers and body</summary>
              <h3>Headers</h3>
              <Pairs pairs={a.response_headers} empty="No headers." />
              <h3>Body</h3>
              {a.response_body ? (
                <Pre text={a.response_body} label="Response body" />
              ) : (
                <p class="muted">Empty.</p>
              )}
            </details>
          </li>
        ))}
      </ol>
      <Pager page={page.data} />
    </>
  );
}
