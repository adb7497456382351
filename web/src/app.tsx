// The page frame: sign-in or the session's views, the navigation, and the view the address names.
import { useEffect, useState } from "preact/hooks";
import { type Capabilities, capabilities, learnCapabilities } from "./capabilities.ts";
import { ErrorBox, Link, Loading, Time } from "./common/bits.tsx";
import { href, route } from "./router.ts";
import { DeliveryView } from "./scenes/delivery.tsx";
import { EventDetail } from "./scenes/event-detail.tsx";
import { EventTypes } from "./scenes/event-types.tsx";
import { EventsList } from "./scenes/events.tsx";
import { Instances } from "./scenes/instances.tsx";
import { Overview } from "./scenes/overview.tsx";
import { PortalSessions } from "./scenes/portal-sessions.tsx";
import { PortalEnded, SignIn } from "./scenes/sign-in.tsx";
import { WebhookCreate } from "./scenes/webhook-create.tsx";
import { WebhookDetail } from "./scenes/webhook-detail.tsx";
import { WebhooksList } from "./scenes/webhooks.tsx";
import { appKind, credential, endSession } from "./session.ts";

const NAV = [
  { path: "", label: "Overview" },
  { path: "webhooks", label: "Webhooks" },
  { path: "events", label: "Events" },
  { path: "event-types", label: "Event types" },
  { path: "portal-sessions", label: "Portal sessions" },
  { path: "instances", label: "Instances" },
];

export function App() {
  const token = credential.value;
  if (token === null) return appKind === "portal" ? <PortalEnded /> : <SignIn />;
  return <SignedIn />;
}

function SignedIn() {
  const caps = capabilities.value;
  const token = credential.value;
  const [problem, setProblem] = useState<unknown>(undefined);
  useEffect(() => {
    if (caps !== null) return;
    // A 401 ends the session in api(); any other failure is said, and no view is shown.
    learnCapabilities().catch((error: unknown) => setProblem(error));
  }, [caps, token]);
  const section = route.value.parts[0] ?? "";
  const title = appKind === "portal" ? "Webhooks portal" : "hookd console";
  const [, id] = route.value.parts;
  useEffect(() => {
    document.title = `${pageTitle(section, id)} · ${title}`;
  }, [section, id, title]);
  return (
    <div class="frame">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">{title}</span>
        <nav class="nav" aria-label="Main">
          {NAV.filter((item) => visible(item.path, caps)).map((item) => (
            <Link
              key={item.path}
              to={href(item.path)}
              class={section === item.path ? "nav-link current" : "nav-link"}
            >
              {item.label}
            </Link>
          ))}
        </nav>
        <button type="button" class="button sign-out" onClick={() => endSession("You signed out.")}>
          Sign out
        </button>
      </header>
      {caps && (caps.tenantId || caps.expiresAt) && <WhoamiLine caps={caps} />}
      <main id="main" tabIndex={-1} class="main">
        {caps !== null ? (
          <View />
        ) : problem ? (
          <ErrorBox error={problem} what="Your session could not be read" />
        ) : (
          <Loading what="your session" />
        )}
      </main>
    </div>
  );
}

/** Which tenant and mode this credential is limited to, and when a session ends. */
function WhoamiLine({ caps }: { caps: Capabilities }) {
  return (
    <p class="whoami">
      {caps.tenantId && (
        <>
          Tenant <span class="mono">{caps.tenantId}</span>
          {caps.mode ? ` · ${caps.mode}` : ""}
        </>
      )}
      {caps.tenantId && caps.expiresAt ? " · " : ""}
      {caps.expiresAt && (
        <>
          session ends <Time iso={caps.expiresAt} />
        </>
      )}
    </p>
  );
}

function visible(path: string, caps: Capabilities | null): boolean {
  if (path === "portal-sessions") return Boolean(caps?.mintPortalSessions);
  if (path === "instances") return Boolean(caps?.operator);
  return true;
}

const TITLES: Record<string, [string, string]> = {
  "": ["Overview", "Overview"],
  webhooks: ["Webhooks", "Webhook"],
  events: ["Events", "Event"],
  deliveries: ["Deliveries", "Delivery"],
  "event-types": ["Event types", "Event types"],
  "portal-sessions": ["Portal sessions", "Portal sessions"],
  instances: ["Instances", "Instances"],
};

/** The tab's title for a view: its list's name, or the kind of object it opens. */
function pageTitle(section: string, id: string | undefined): string {
  const names = TITLES[section];
  if (!names) return "Not found";
  if (section === "webhooks" && id === "new") return "Create webhook";
  return id ? `${names[1]} ${id}` : names[0];
}

function View() {
  const { parts } = route.value;
  const [section, id] = parts;
  const caps = capabilities.value;
  switch (section) {
    case undefined:
      return <Overview />;
    case "webhooks":
      if (id === "new") return <WebhookCreate />;
      if (id) return <WebhookDetail key={id} id={id} />;
      return <WebhooksList />;
    case "events":
      if (id) return <EventDetail key={id} id={id} />;
      return <EventsList />;
    case "deliveries":
      if (id) return <DeliveryView key={id} id={id} />;
      break;
    case "event-types":
      return <EventTypes />;
    case "portal-sessions":
      if (visible(section, caps)) return <PortalSessions />;
      break;
    case "instances":
      if (visible(section, caps)) return <Instances />;
      break;
  }
  return (
    <section>
      <h1>Not found</h1>
      <ErrorBox error={new Error(`There is no page at ${location.pathname}.`)} />
      <p>
        <Link to={href("")}>Go to the overview</Link>
      </p>
    </section>
  );
}
