// Small shared pieces: copy buttons, times, status badges, empty/loading/error states, links, pager.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { describeError, type Page } from "../api.ts";
import { localTime } from "../format.ts";
import { onLinkClick, setQuery } from "../router.ts";

export function CopyButton({ value, what }: { value: string; what: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setState("copied");
    } catch {
      setState("failed");
    }
  };
  return (
    <span class="copy">
      <button type="button" class="button small" title={`Copy ${what}`} onClick={copy}>
        Copy
      </button>
      <span class="copy-state" role="status">
        {state === "copied" ? "Copied" : state === "failed" ? "Select the text to copy it" : ""}
      </span>
    </span>
  );
}

/** An id (or any value worth copying) shown whole, with its copy button. */
export function Copyable({ value, what }: { value: string; what: string }) {
  return (
    <span class="copyable">
      <code class="value">{value}</code>
      <CopyButton value={value} what={what} />
    </span>
  );
}

/** An object's whole id as a link to it, with a copy button (the first cell of a list's row). */
export function IdLink({ id, to, what }: { id: string; to: string; what: string }) {
  return (
    <>
      <Link to={to} class="mono">
        {id}
      </Link>{" "}
      <CopyButton value={id} what={what} />
    </>
  );
}

export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={`${iso} (UTC)`}>
      {localTime(iso)}
    </time>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status.replace(/[^a-z_]/g, "")}`}>{status.replace("_", " ")}</span>;
}

export function EnabledBadge({ enabled, reason }: { enabled: boolean; reason: string | null }) {
  if (enabled) return <span class="badge status-success">enabled</span>;
  return <span class="badge status-failed">{reason ? `disabled (${reason})` : "disabled"}</span>;
}

export function Link({
  to,
  children,
  class: className,
}: {
  to: string;
  children: ComponentChildren;
  class?: string;
}) {
  return (
    <a href={to} class={className} onClick={onLinkClick}>
      {children}
    </a>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      Loading {what}…
    </p>
  );
}

export function ErrorBox({ error, what }: { error: unknown; what?: string }) {
  if (error === undefined || error === null) return null;
  return (
    <div class="error" role="alert">
      {what ? `${what}: ` : ""}
      {describeError(error)}
    </div>
  );
}

/** What an action did, said when it is done: a status when it worked, an alert when it did not. */
export function Outcome({ ok, children }: { ok: boolean; children: ComponentChildren }) {
  return (
    <p class={ok ? "ok" : "error"} role={ok ? "status" : "alert"}>
      {children}
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/** The previous and next page buttons of a list whose cursors are in the address (a new history entry each). */
export function Pager<T>({ page }: { page: Page<T> }) {
  if (!page.has_next_page && !page.has_previous_page) return null;
  const turn = (cursor: { after?: string; before?: string }) =>
    setQuery({ after: cursor.after, before: cursor.before }, { push: true });
  return (
    <nav class="pager" aria-label="Pages">
      <button
        type="button"
        class="button"
        disabled={!page.has_previous_page || !page.start_cursor}
        onClick={() => turn({ before: page.start_cursor ?? undefined })}
      >
        Previous page
      </button>
      <button
        type="button"
        class="button"
        disabled={!page.has_next_page || !page.end_cursor}
        onClick={() => turn({ after: page.end_cursor ?? undefined })}
      >
        Next page
      </button>
    </nav>
  );
}

/** A list's table: its column headings, its rows (scrolling sideways on a narrow screen). */
export function Table({ columns, children }: { columns: readonly string[]; children: ComponentChildren }) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {columns.map((name) => (
              <th key={name} scope="col">
                {name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** A table row that opens its object: click anywhere, or Enter on its link (the first cell). */
export function RowLink({ to, children }: { to: string; children: ComponentChildren }) {
  return (
    <tr
      class="row-link"
      onClick={(event) => {
        if ((event.target as HTMLElement).closest("a, button, input, select, textarea")) return;
        const link = (event.currentTarget as HTMLElement).querySelector("a");
        link?.click();
      }}
      data-href={to}
    >
      {children}
    </tr>
  );
}

export function Pre({ text, label }: { text: string; label: string }) {
  return (
    // A scrolling region is focusable so keyboard users can scroll it (WCAG 2.1.1).
    // biome-ignore lint/a11y/noNoninteractiveTabindex: see above
    <section class="pre" aria-label={label} tabIndex={0}>
      <pre>{text}</pre>
    </section>
  );
}

/** One entry of a facts list (`<dl class="facts">`): what it is, and its value (in monospace with `mono`). */
export function Fact({
  term,
  mono,
  children,
}: {
  term: string;
  mono?: boolean;
  children: ComponentChildren;
}) {
  return (
    <div>
      <dt>{term}</dt>
      <dd class={mono ? "mono" : undefined}>{children}</dd>
    </div>
  );
}

/** Key/value pairs (headers, metadata) as a definition list of text. */
export function Pairs({ pairs, empty }: { pairs: Record<string, string> | null | undefined; empty: string }) {
  const entries = Object.entries(pairs ?? {});
  if (entries.length === 0) return <p class="muted">{empty}</p>;
  return (
    <dl class="pairs">
      {entries.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
