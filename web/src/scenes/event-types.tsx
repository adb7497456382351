// The event type catalog, with descriptions and JSON Schemas.
import { api, type EventType } from "../api.ts";
import { Empty, ErrorBox, Loading, Pre } from "../common/bits.tsx";
import { useResource } from "../common/use-resource.ts";
import { prettyJson } from "../format.ts";

export function EventTypes() {
  const types = useResource(() => api<{ data: EventType[] }>("GET", "/v1/event-types"), []);
  return (
    <section>
      <h1>Event types</h1>
      {types.loading && !types.data && <Loading what="event types" />}
      <ErrorBox error={types.error} what="Event types could not be loaded" />
      {types.data && types.data.data.length === 0 && (
        <Empty>
          The catalog is empty: any dot-separated type is accepted. Declare types under event_types in the
          config.
        </Empty>
      )}
      {types.data && (
        <ul class="cards">
          {types.data.data.map((type) => (
            <li key={type.name} class="card">
              <h2 class="mono">{type.name}</h2>
              <p>{type.description || <span class="muted">No description.</span>}</p>
              {type.schema ? (
                <details>
                  <summary>Schema</summary>
                  <Pre text={prettyJson(type.schema)} label={`Schema of ${type.name}`} />
                </details>
              ) : (
                <p class="muted">No schema: any JSON object is accepted as data.</p>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
