// A webhook's secret rotation (with a grace period), recovery of failed deliveries since a date,
// and how a receiver verifies signatures (the secret only while it is being shown).
import { useState } from "preact/hooks";
import { api, type Webhook } from "../api.ts";
import { CopyButton, ErrorBox, Outcome, Pre } from "../common/bits.tsx";
import { useAction } from "../common/use-action.ts";
import { isoToLocalInput, localInputToIso } from "../format.ts";
import { revealed } from "./reveal.ts";

export function SecretPanel({ webhook, onRotated }: { webhook: Webhook; onRotated: () => void }) {
  const [grace, setGrace] = useState("0");
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const rotate = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const rotated = await api<Webhook>("POST", `/v1/webhooks/${webhook.id}/rotate-secret`, {
        grace_period_seconds: Number(grace || "0"),
      });
      revealed.value = {
        webhookId: webhook.id,
        secret: rotated.secret,
        publicKey: rotated.public_key,
        why: "rotated",
      };
      window.scrollTo({ top: 0 });
      onRotated();
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="panel" onSubmit={rotate}>
      <h2>Secret</h2>
      <p>
        A new {webhook.signature_scheme === "v1a" ? "key pair" : "secret"} is made and shown once. During the
        grace period deliveries are signed with both the new and the old one, so the receiver can switch
        without missing any.
      </p>
      <div class="row">
        <div class="field">
          <label for="grace">Grace period</label>
          <input
            id="grace"
            type="number"
            min={0}
            max={604800}
            value={grace}
            onInput={(e) => setGrace((e.target as HTMLInputElement).value)}
            aria-describedby="grace-help"
          />
          <p class="help" id="grace-help">
            Seconds the old secret keeps signing: 0 stops it at once, 86400 is a day, 604800 (7 days) at most.
          </p>
        </div>
      </div>
      <ErrorBox error={error} what="Not rotated" />
      <button type="submit" class="button" disabled={busy}>
        Rotate secret
      </button>
    </form>
  );
}

export function RecoverPanel({ webhook, onRecovered }: { webhook: Webhook; onRecovered: () => void }) {
  const [since, setSince] = useState(() => isoToLocalInput(new Date(Date.now() - 86_400_000).toISOString()));
  const { busy, outcome: result, setOutcome: setResult, run } = useAction();
  const recover = async (event: Event) => {
    event.preventDefault();
    const iso = localInputToIso(since);
    if (!iso) {
      setResult({ ok: false, text: "Choose the date and time to recover from." });
      return;
    }
    await run(async () => {
      const answer = await api<{ recovered: number }>("POST", `/v1/webhooks/${webhook.id}/recover`, {
        since: iso,
      });
      onRecovered();
      return {
        text:
          answer.recovered === 0
            ? "Nothing to recover: no failed or exhausted delivery since then."
            : `${answer.recovered} ${answer.recovered === 1 ? "delivery" : "deliveries"} queued again.`,
      };
    });
  };
  return (
    <form class="panel" onSubmit={recover}>
      <h2>Recover</h2>
      <p>Queue again every failed or exhausted delivery of this webhook created since a date.</p>
      <div class="field">
        <label for="recover-since">Since</label>
        <input
          id="recover-since"
          type="datetime-local"
          value={since}
          onInput={(e) => setSince((e.target as HTMLInputElement).value)}
        />
        <p class="help">In your time zone ({Intl.DateTimeFormat().resolvedOptions().timeZone}).</p>
      </div>
      {result && <Outcome ok={result.ok}>{result.text}</Outcome>}
      <button type="submit" class="button" disabled={busy}>
        Recover
      </button>
    </form>
  );
}

function snippets(webhook: Webhook, secret: string | null): { label: string; code: string }[] {
  if (webhook.signature_scheme === "v1a") {
    const key = webhook.public_key ?? "whpk_…";
    return [
      {
        label: "Command line (hookd verify)",
        code: `hookd verify --public-key '${key}' \\\n  --id "$WEBHOOK_ID" --timestamp "$WEBHOOK_TIMESTAMP" \\\n  --signature "$WEBHOOK_SIGNATURE" < body.json`,
      },
    ];
  }
  const value = secret ?? `whsec_… (the secret ending in ${webhook.secret_last4}, shown when it was made)`;
  const literal = secret ?? "YOUR_WEBHOOK_SECRET";
  return [
    {
      label: "JavaScript / TypeScript (npm install standardwebhooks)",
      code: `import { Webhook } from "standardwebhooks";\n\n// ${value}\nconst wh = new Webhook("${literal}");\n\n// rawBody: the request body exactly as received (a string)\n// headers: webhook-id, webhook-timestamp, webhook-signature\nconst event = wh.verify(rawBody, headers); // throws when the signature is wrong`,
    },
    {
      label: "Python (pip install standardwebhooks)",
      code: `from standardwebhooks.webhooks import Webhook\n\n# ${value}\nwh = Webhook("${literal}")\nevent = wh.verify(raw_body, headers)  # raises when the signature is wrong`,
    },
    {
      label: "Go (github.com/standard-webhooks/standard-webhooks/libraries/go)",
      code: `import standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"\n\n// ${value}\nwh, err := standardwebhooks.NewWebhook("${literal}")\nerr = wh.Verify(body, r.Header) // nil when the signature is right`,
    },
  ];
}

export function VerifyPanel({ webhook, secret }: { webhook: Webhook; secret: string | null }) {
  return (
    <section class="panel">
      <h2>How to verify</h2>
      <p>
        Every delivery is signed the Standard Webhooks way: <code>webhook-id</code>,{" "}
        <code>webhook-timestamp</code> and <code>webhook-signature</code> headers. Verify the raw body before
        parsing it, and deduplicate by <code>webhook-id</code>.
      </p>
      {snippets(webhook, secret).map((s) => (
        <div key={s.label} class="snippet">
          <div class="snippet-head">
            <h3>{s.label}</h3>
            <CopyButton value={s.code} what={`${s.label} code`} />
          </div>
          <Pre text={s.code} label={s.label} />
        </div>
      ))}
    </section>
  );
}
