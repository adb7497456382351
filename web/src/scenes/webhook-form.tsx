// Every setting of a webhook as one form, for creating and for editing. Editing sends only the
// fields that changed (so a setting this server does not know is never sent unless it was set).
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type EventType, type Webhook } from "../api.ts";
import { ErrorBox } from "../common/bits.tsx";
import { useResource } from "../common/use-resource.ts";

export interface FormValues {
  name: string;
  url: string;
  description: string;
  events: string[];
  extraPatterns: string;
  accountIds: string;
  headers: string;
  metadata: string;
  filter: string;
  ordering: string;
  rateLimit: string;
  timeout: string;
  maxInFlight: string;
  signatureScheme: string;
}

export function valuesOf(w: Webhook | null, catalog: string[]): FormValues {
  const events = w?.events ?? [];
  return {
    name: w?.name ?? "",
    url: w?.url ?? "",
    description: w?.description ?? "",
    events: events.filter((e) => catalog.includes(e)),
    extraPatterns: events.filter((e) => !catalog.includes(e)).join(", "),
    accountIds: (w?.account_ids ?? []).join(", "),
    headers: Object.entries(w?.headers ?? {})
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n"),
    metadata: Object.entries(w?.metadata ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
    filter: w?.filter ? JSON.stringify(w.filter, null, 2) : "",
    ordering: w?.ordering ?? "unordered",
    rateLimit: w?.rate_limit ? String(w.rate_limit) : "",
    timeout: w ? String(w.timeout_seconds) : "",
    maxInFlight: w ? String(w.max_in_flight) : "",
    signatureScheme: w?.signature_scheme ?? "v1",
  };
}

function pairs(text: string, separator: RegExp, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const match = separator.exec(line);
    if (!match || match.index === 0) throw new Error(`${what}: “${line.trim()}” needs a name and a value`);
    out[line.slice(0, match.index).trim()] = line.slice(match.index + match[0].length).trim();
  }
  return out;
}

const list = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/** The API body for these values; `original` given: only what differs from it. */
export function bodyOf(values: FormValues, original: FormValues | null): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const changed = (key: keyof FormValues) =>
    original === null ? true : JSON.stringify(values[key]) !== JSON.stringify(original[key]);
  if (changed("name") && values.name.trim()) body.name = values.name.trim();
  if (changed("url")) body.url = values.url.trim();
  if (changed("description") && (original !== null || values.description.trim()))
    body.description = values.description.trim() || null;
  if (changed("events") || changed("extraPatterns"))
    body.events = [...values.events, ...list(values.extraPatterns)];
  if (changed("accountIds") && (original !== null || values.accountIds.trim())) {
    const ids = list(values.accountIds);
    body.account_ids = ids.length ? ids : null;
  }
  if (changed("headers") && (original !== null || values.headers.trim()))
    body.headers = pairs(values.headers, /:/, "Custom headers");
  if (changed("metadata") && (original !== null || values.metadata.trim()))
    body.metadata = pairs(values.metadata, /=/, "Metadata");
  if (changed("filter") && (original !== null || values.filter.trim())) {
    if (!values.filter.trim()) body.filter = null;
    else {
      try {
        body.filter = JSON.parse(values.filter);
      } catch {
        throw new Error('Filter: must be a JSON object, such as {"data.amount": {"$gt": 100}}');
      }
    }
  }
  if (changed("ordering") && (original !== null || values.ordering !== "unordered"))
    body.ordering = values.ordering;
  if (changed("rateLimit") && (original !== null || values.rateLimit))
    body.rate_limit = values.rateLimit ? Number(values.rateLimit) : null;
  if (changed("timeout") && values.timeout) body.timeout_seconds = Number(values.timeout);
  if (changed("maxInFlight") && values.maxInFlight) body.max_in_flight = Number(values.maxInFlight);
  if (original === null && values.signatureScheme !== "v1") body.signature_scheme = values.signatureScheme;
  return body;
}

export function WebhookForm({
  webhook,
  submitLabel,
  onSubmit,
}: {
  webhook: Webhook | null;
  submitLabel: string;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
}) {
  const catalog = useResource(() => api<{ data: EventType[] }>("GET", "/v1/event-types"), []);
  const names = (catalog.data?.data ?? []).map((t) => t.name);
  const [values, setValues] = useState<FormValues | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  // After a save, the edits give way to the webhook as the server now has it, once it arrives
  // (the form is not remounted, so "Saved." and anything typed meanwhile elsewhere survive a reload).
  const resetOnNextWebhook = useRef(false);
  useEffect(() => {
    if (resetOnNextWebhook.current) {
      resetOnNextWebhook.current = false;
      setValues(null);
    }
  }, [webhook?.updated_at]);
  if (!catalog.data && !catalog.error) return <p role="status">Loading the event types…</p>;
  const original = valuesOf(webhook, names);
  const v = values ?? original;
  const set = (key: keyof FormValues, value: FormValues[keyof FormValues]) => {
    setSaved(false);
    setValues({ ...v, [key]: value } as FormValues);
  };
  const text = (key: keyof FormValues) => (e: Event) => set(key, (e.target as HTMLInputElement).value);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    let body: Record<string, unknown>;
    try {
      body = bodyOf(v, webhook ? original : null);
    } catch (problem) {
      setError(problem);
      return;
    }
    if (webhook && Object.keys(body).length === 0) {
      setSaved(true);
      return;
    }
    setBusy(true);
    try {
      resetOnNextWebhook.current = webhook !== null;
      await onSubmit(body);
      setSaved(true);
    } catch (problem) {
      resetOnNextWebhook.current = false;
      setError(problem);
    } finally {
      setBusy(false);
    }
  };
  const id = (name: string) => `${webhook ? "edit" : "new"}-${name}`;
  return (
    <form class="form" onSubmit={submit}>
      <ErrorBox error={catalog.error} what="The event types could not be loaded" />
      <div class="field">
        <label for={id("name")}>Name</label>
        <input
          id={id("name")}
          value={v.name}
          onInput={text("name")}
          maxLength={255}
          placeholder="Defaults to the URL's host"
        />
      </div>
      <div class="field">
        <label for={id("url")}>URL</label>
        <input
          id={id("url")}
          type="url"
          required
          value={v.url}
          onInput={text("url")}
          placeholder="https://example.com/webhooks"
        />
      </div>
      <div class="field">
        <label for={id("description")}>Description</label>
        <textarea
          id={id("description")}
          value={v.description}
          onInput={text("description")}
          maxLength={1000}
          rows={2}
        />
      </div>
      <fieldset class="field">
        <legend>Event types</legend>
        {names.length > 0 ? (
          <div class="checks">
            {names.map((name) => (
              <label key={name} class="check">
                <input
                  type="checkbox"
                  checked={v.events.includes(name)}
                  onChange={(e) =>
                    set(
                      "events",
                      (e.target as HTMLInputElement).checked
                        ? [...v.events, name]
                        : v.events.filter((x) => x !== name),
                    )
                  }
                />
                <span class="mono">{name}</span>
              </label>
            ))}
          </div>
        ) : null}
        <label for={id("patterns")}>Other types or patterns</label>
        <input
          id={id("patterns")}
          value={v.extraPatterns}
          onInput={text("extraPatterns")}
          placeholder="*, invoice.*, user.created"
          aria-describedby={id("patterns-help")}
        />
        <p class="help" id={id("patterns-help")}>
          Comma-separated. <code>*</code> receives everything, <code>invoice.*</code> every invoice type.
        </p>
      </fieldset>
      <details class="advanced" open={webhook !== null}>
        <summary>More settings</summary>
        <div class="field">
          <label for={id("accounts")}>Account ids</label>
          <input
            id={id("accounts")}
            value={v.accountIds}
            onInput={text("accountIds")}
            placeholder="Every account"
          />
          <p class="help">Comma-separated; empty delivers the events of every account.</p>
        </div>
        <div class="field">
          <label for={id("headers")}>Custom headers</label>
          <textarea
            id={id("headers")}
            value={v.headers}
            onInput={text("headers")}
            rows={3}
            placeholder="X-Team: billing"
          />
          <p class="help">One “Name: value” a line, added to every delivery.</p>
        </div>
        <div class="field">
          <label for={id("metadata")}>Metadata</label>
          <textarea
            id={id("metadata")}
            value={v.metadata}
            onInput={text("metadata")}
            rows={3}
            placeholder="owner=billing"
          />
          <p class="help">One “key=value” a line, for your own use.</p>
        </div>
        <div class="field">
          <label for={id("filter")}>Filter</label>
          <textarea
            id={id("filter")}
            class="mono"
            value={v.filter}
            onInput={text("filter")}
            rows={3}
            placeholder='{"data.amount": {"$gt": 100}}'
          />
          <p class="help">
            A JSON filter on the event's type, account_id and data; empty delivers every matching type.
          </p>
        </div>
        <div class="row">
          <div class="field">
            <label for={id("ordering")}>Ordering</label>
            <select id={id("ordering")} value={v.ordering} onChange={text("ordering")}>
              <option value="unordered">Unordered</option>
              <option value="fifo">FIFO (one at a time, in order)</option>
            </select>
          </div>
          <div class="field">
            <label for={id("rate")}>Rate limit</label>
            <input
              id={id("rate")}
              type="number"
              min={1}
              max={10000}
              value={v.rateLimit}
              onInput={text("rateLimit")}
              placeholder="None"
            />
            <p class="help">Deliveries a second at most.</p>
          </div>
          <div class="field">
            <label for={id("timeout")}>Timeout</label>
            <input
              id={id("timeout")}
              type="number"
              min={1}
              max={60}
              value={v.timeout}
              onInput={text("timeout")}
              placeholder="Default"
            />
            <p class="help">Seconds, 1–60.</p>
          </div>
          <div class="field">
            <label for={id("inflight")}>Max in flight</label>
            <input
              id={id("inflight")}
              type="number"
              min={1}
              value={v.maxInFlight}
              onInput={text("maxInFlight")}
              placeholder="Default"
            />
          </div>
          {webhook === null && (
            <div class="field">
              <label for={id("scheme")}>Signature scheme</label>
              <select id={id("scheme")} value={v.signatureScheme} onChange={text("signatureScheme")}>
                <option value="v1">v1 (HMAC-SHA256 secret)</option>
                <option value="v1a">v1a (Ed25519 key pair)</option>
              </select>
            </div>
          )}
        </div>
      </details>
      <ErrorBox error={error} what="Not saved" />
      {saved && webhook && (
        <p class="ok" role="status">
          Saved.
        </p>
      )}
      <button type="submit" class="button primary" disabled={busy}>
        {busy ? "Saving…" : submitLabel}
      </button>
    </form>
  );
}
