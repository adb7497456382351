// The page frame: sign-in or the session's views, the navigation, and the view the address names.
import { useEffect } from "preact/hooks";
import { capabilities, learnPortalCapabilities } from "./capabilities.ts";
import { ErrorBox, Link, Loading } from "./common/bits.tsx";
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
  { path: "", label: "Overview", operator: false },
  { path: "webhooks", label: "Webhooks", operator: false },
  { path: "events", label: "Events", operator: false },
  { path: "event-types", label: "Event types", operator: false },
  { path: "portal-sessions", label: "Portal sessions", operator: true },
  { path: "instances", label: "Instances", operator: true },
];

export function App() {
  const token = credential.value;
  if (token === null) return appKind === "portal" ? <PortalEnded /> : <SignIn />;
  return <SignedIn />;
}

function SignedIn() {
  const caps = capabilities.value;
  useEffect(() => {
    if (appKind === "portal" && caps === null) {
      learnPortalCapabilities().catch(() => {
        // A 401 has already ended the session; anything else leaves every action off.
        if (capabilities.value === null)
          capabilities.value = { manageWebhooks: false, replay: false, operator: false };
      });
    }
  }, [caps]);
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
          {NAV.filter((item) => !item.operator || caps?.operator).map((item) => (
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
      <main id="main" tabIndex={-1} class="main">
        {caps === null ? <Loading what="your session" /> : <View />}
      </main>
    </div>
  );
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
  const [section, id, extra] = parts;
  const operator = capabilities.value?.operator ?? false;
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
      if (operator) return <PortalSessions />;
      break;
    case "instances":
      if (operator) return <Instances />;
      break;
  }
  void extra;
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
