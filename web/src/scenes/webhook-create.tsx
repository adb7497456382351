// Create a webhook; its secret is shown once on the page that opens next.
import { api, type Webhook } from "../api.ts";
import { capabilities } from "../capabilities.ts";
import { Link } from "../common/bits.tsx";
import { href, navigate } from "../router.ts";
import { revealed } from "./reveal.ts";
import { WebhookForm } from "./webhook-form.tsx";

export function WebhookCreate() {
  if (!capabilities.value?.manageWebhooks) {
    return (
      <section>
        <h1>Create webhook</h1>
        <p>This session cannot create webhooks.</p>
      </section>
    );
  }
  return (
    <section>
      <p class="crumbs">
        <Link to={href("webhooks")}>Webhooks</Link>
      </p>
      <h1>Create webhook</h1>
      <WebhookForm
        webhook={null}
        submitLabel="Create webhook"
        onSubmit={async (body) => {
          const created = await api<Webhook>("POST", "/v1/webhooks", body);
          revealed.value = {
            webhookId: created.id,
            secret: created.secret,
            publicKey: created.public_key,
            why: "created",
          };
          navigate(href(`webhooks/${created.id}`));
        }}
      />
    </section>
  );
}
