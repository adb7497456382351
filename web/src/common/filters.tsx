// A list's filters, kept in the address: the form that applies them, its labelled fields, and the
// select that applies its choice at once. Applying a filter goes back to the list's first page.
import type { ComponentChildren } from "preact";
import { setFilters } from "../router.ts";

/** The filters form of a list: on submit, the filters `onApply` returns go into the address. */
export function FilterForm({
  label,
  onApply,
  children,
}: {
  label: string;
  onApply: () => Record<string, string | null>;
  children: ComponentChildren;
}) {
  return (
    <form
      class="filters"
      aria-label={label}
      onSubmit={(event) => {
        event.preventDefault();
        setFilters(onApply());
      }}
    >
      {children}
    </form>
  );
}

/** A labelled text (or date) field of a filters form, its value a draft until the form is applied. */
export function FilterInput({
  label,
  value,
  onValue,
  type,
  placeholder,
  list,
}: {
  label: string;
  value: string;
  onValue: (value: string) => void;
  type?: "search" | "datetime-local";
  placeholder?: string;
  list?: string;
}) {
  return (
    <label>
      {label}
      <input
        type={type}
        list={list}
        value={value}
        placeholder={placeholder}
        onInput={(e) => onValue((e.target as HTMLInputElement).value)}
      />
    </label>
  );
}

/** A labelled select of one filter (`name` in the address), "All" first; a choice applies at once. */
export function FilterSelect({
  label,
  name,
  value,
  options,
}: {
  label: string;
  name: string;
  value: string;
  options: readonly { value: string; text: string }[];
}) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => setFilters({ [name]: (e.target as HTMLSelectElement).value })}>
        <option value="">All</option>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.text}
          </option>
        ))}
      </select>
    </label>
  );
}
