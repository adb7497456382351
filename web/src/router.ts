// Routes live in the address (path under /console/ or /portal/, filters and cursors in the query),
// so back, reload and shared links open the same view. navigate() pushes; setQuery() replaces
// the filters of the current view (or pushes, for paging).
import { signal } from "@preact/signals";
import { basePath } from "./session.ts";

export interface Route {
  /** Path segments after the base, e.g. ["webhooks", "wh_…"]. */
  parts: string[];
  query: URLSearchParams;
}

function current(): Route {
  const rest = location.pathname.startsWith(basePath) ? location.pathname.slice(basePath.length) : "";
  const parts = rest.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(location.search) };
}

export const route = signal<Route>(current());

addEventListener("popstate", () => {
  route.value = current();
});

export function href(path: string, query: Record<string, string | undefined | null> = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value) params.set(name, value);
  const text = params.toString();
  const clean = path.replace(/^\/+/, "");
  return `${basePath}/${clean}${text ? `?${text}` : ""}`;
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  route.value = current();
  if (!options.replace) document.getElementById("main")?.focus({ preventScroll: false });
}

/** Changes some query parameters of the current view (empty values are removed). */
export function setQuery(
  changes: Record<string, string | null | undefined>,
  options: { push?: boolean } = {},
) {
  const params = new URLSearchParams(location.search);
  for (const [name, value] of Object.entries(changes)) {
    if (value) params.set(name, value);
    else params.delete(name);
  }
  const text = params.toString();
  const to = location.pathname + (text ? `?${text}` : "");
  if (options.push) history.pushState(null, "", to);
  else history.replaceState(null, "", to);
  route.value = current();
}

/** The cursors of the current view's page of a list (empty on its first page). */
export function pageCursors(query: URLSearchParams = route.value.query): { after: string; before: string } {
  return { after: query.get("after") ?? "", before: query.get("before") ?? "" };
}

/** Changes some filters of the current view's list and goes back to its first page, as a new history entry. */
export function setFilters(changes: Record<string, string | null | undefined>) {
  setQuery({ ...changes, after: null, before: null }, { push: true });
}

/** A click on an in-app link: the page does not reload (modified clicks keep the browser's meaning). */
export function onLinkClick(event: MouseEvent): void {
  const target = event.currentTarget as HTMLAnchorElement;
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey)
    return;
  event.preventDefault();
  navigate(target.getAttribute("href") ?? basePath);
}
