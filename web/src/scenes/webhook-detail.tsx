// One webhook: what it is, its chart, its deliveries, every setting, and its actions.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Delivery, type Stats, type Webhook } from "../api.ts";
import { capabilities } from "../capabilities.ts";
import {
  Copyable,
  EnabledBadge,
  ErrorBox,
  Fact,
  Link,
  Loading,
  Outcome,
  Pairs,
  Time,
} from "../common/bits.tsx";
import { StatsChart } from "../common/chart.tsx";
import { useAction } from "../common/use-action.ts";
import { useResource } from "../common/use-resource.ts";
import { percent } from "../format.ts";
import { href, navigate } from "../router.ts";
import { DeliveriesTable } from "./deliveries-table.tsx";
import { revealed } from "./reveal.ts";
import { WebhookForm } from "./webhook-form.tsx";
import { RecoverPanel, SecretPanel, VerifyPanel } from "./webhook-secret.tsx";

export function WebhookDetail({ id }: { id: string }) {
  const webhook = useResource(() => api<Webhook>("GET", `/v1/webhooks/${id}`), [id]);
  const [deliveriesKey, setDeliveriesKey] = useState(0);
  const reloadDeliveries = () => setDeliveriesKey((k) => k + 1);
  useEffect(
    () => () => {
      if (revealed.value?.webhookId === id) revealed.value = null;
    },
    [id],
  );
  const crumbs = (
    <p class="crumbs">
      <Link to={href("webhooks")}>Webhooks</Link>
    </p>
  );
  if (webhook.loading && !webhook.data) return <Loading what="the webhook" />;
  if (!webhook.data) {
    return (
      <section>
        {crumbs}
        <h1>Webhook</h1>
        <ErrorBox error={webhook.error} what="This webhook could not be loaded" />
      </section>
    );
  }
  const w = webhook.data;
  const caps = capabilities.value;
  const shown = revealed.value?.webhookId === id ? revealed.value : null;
  return (
    <section>
      {crumbs}
      <div class="heading">
        <h1>{w.name}</h1>
        <EnabledBadge enabled={w.enabled} reason={w.disabled_reason} />
      </div>
      {shown && <RevealedSecret shown={shown} />}
      <dl class="facts">
        <Fact term="Id">
          <Copyable value={w.id} what="webhook id" />
        </Fact>
        <Fact term="URL">
          <Copyable value={w.url} what="URL" />
        </Fact>
        {w.description && <Fact term="Description">{w.description}</Fact>}
        <Fact term="Event types" mono>
          {w.events.join(", ")}
        </Fact>
        <Fact term="Tenant" mono>
          {w.tenant_id}
          {w.mode ? ` · ${w.mode}` : ""}
        </Fact>
        <Fact term="Signing" mono>
          {w.signature_scheme === "v1a"
            ? `v1a, public key ${w.public_key ?? ""}`
            : `v1, secret …${w.secret_last4}`}
        </Fact>
        <Fact term="Created">
          <Time iso={w.created_at} />
        </Fact>
        <Fact term="Updated">
          <Time iso={w.updated_at} />
        </Fact>
        <Fact term="Custom headers">
          <Pairs pairs={w.headers} empty="None" />
        </Fact>
        <Fact term="Metadata">
          <Pairs pairs={w.metadata} empty="None" />
        </Fact>
      </dl>
      <Actions webhook={w} onChange={webhook.reload} onTest={reloadDeliveries} />
      <h2>Deliveries over the last 24 hours</h2>
      <WebhookStats id={id} />
      <h2>Deliveries</h2>
      <DeliveriesTable
        path={`/v1/webhooks/${id}/deliveries`}
        reloadKey={deliveriesKey}
        emptyText="No deliveries yet. Publish an event of a type it subscribes to, or send a test event."
      />
      {caps?.manageWebhooks && (
        <>
          <h2>Settings</h2>
          <WebhookForm
            webhook={w}
            submitLabel="Save"
            onSubmit={async (body) => {
              await api<Webhook>("PATCH", `/v1/webhooks/${id}`, body);
              webhook.reload();
            }}
          />
          <SecretPanel webhook={w} onRotated={webhook.reload} />
        </>
      )}
      {caps?.replay && <RecoverPanel webhook={w} onRecovered={reloadDeliveries} />}
      <VerifyPanel webhook={w} secret={shown?.secret ?? null} />
      {caps?.manageWebhooks && <DeletePanel webhook={w} />}
    </section>
  );
}

function RevealedSecret({ shown }: { shown: NonNullable<typeof revealed.value> }) {
  const value = shown.secret ?? shown.publicKey ?? "";
  const what = shown.secret ? "signing secret" : "public key";
  return (
    <div class="reveal" role="status">
      <h2>
        {shown.why === "created" ? "Webhook created" : "Secret rotated"}: its new {what}
      </h2>
      <Copyable value={value} what={what} />
      <p>
        {shown.secret
          ? "Copy it now and give it to the receiver: it is shown this once and cannot be read again."
          : "The receiver verifies signatures with this public key; the private key never leaves hookd."}
      </p>
    </div>
  );
}

function WebhookStats({ id }: { id: string }) {
  const stats = useResource(() => api<Stats>("GET", `/v1/webhooks/${id}/stats?bucket=1h`), [id]);
  if (stats.loading && !stats.data) return <Loading what="statistics" />;
  if (!stats.data) return <ErrorBox error={stats.error} what="Statistics could not be loaded" />;
  const t = stats.data.totals;
  return (
    <>
      <p>
        {t.attempts} attempts, {t.succeeded} succeeded, {t.failed} failed; success rate{" "}
        {percent(t.success_rate)}.
      </p>
      <StatsChart stats={stats.data} label="This webhook" />
    </>
  );
}

function Actions({
  webhook,
  onChange,
  onTest,
}: {
  webhook: Webhook;
  onChange: () => void;
  onTest: () => void;
}) {
  const caps = capabilities.value;
  const { busy, outcome: message, run } = useAction<{ text: string; delivery?: string }>();
  if (!caps?.manageWebhooks && !caps?.sendTest) return null;
  return (
    <div class="actions">
      {caps.manageWebhooks && (
        <button
          type="button"
          class="button"
          disabled={busy}
          onClick={() =>
            run(async () => {
              await api("PATCH", `/v1/webhooks/${webhook.id}`, { enabled: !webhook.enabled });
              onChange();
              return {
                text: webhook.enabled ? "Disabled: nothing is sent until it is enabled again." : "Enabled.",
              };
            })
          }
        >
          {webhook.enabled ? "Disable" : "Enable"}
        </button>
      )}
      {caps.sendTest && (
        <button
          type="button"
          class="button"
          disabled={busy}
          onClick={() =>
            run(async () => {
              const delivery = await api<Delivery>("POST", `/v1/webhooks/${webhook.id}/test`);
              onTest();
              return { text: "Test event sent: delivery ", delivery: delivery.id };
            })
          }
        >
          Send test event
        </button>
      )}
      {message && (
        <Outcome ok={message.ok}>
          {message.text}
          {message.delivery && (
            <Link to={href(`deliveries/${message.delivery}`)} class="mono">
              {message.delivery}
            </Link>
          )}
        </Outcome>
      )}
    </div>
  );
}

function DeletePanel({ webhook }: { webhook: Webhook }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await api("DELETE", `/v1/webhooks/${webhook.id}`);
      dialog.current?.close();
      navigate(href("webhooks"));
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="danger">
      <h2>Delete</h2>
      <p>
        Deleting stops every delivery to this URL; undelivered deliveries are cancelled. History stays until
        retention removes it.
      </p>
      <button type="button" class="button danger-button" onClick={() => dialog.current?.showModal()}>
        Delete
      </button>
      <dialog ref={dialog} class="dialog" aria-labelledby="delete-title">
        <h2 id="delete-title">Delete webhook {webhook.name}?</h2>
        <p>
          This cannot be undone. <span class="mono">{webhook.url}</span> receives nothing more.
        </p>
        <ErrorBox error={error} what="Not deleted" />
        <div class="actions">
          <button type="button" class="button danger-button" disabled={busy} onClick={confirm}>
            Delete
          </button>
          <button type="button" class="button" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
        </div>
      </dialog>
    </div>
  );
}
