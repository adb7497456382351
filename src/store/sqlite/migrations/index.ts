// The schema migrations, embedded in the binary as text. Forward only: append, never edit.
import m0001 from "./0001_init.sql" with { type: "text" };
import m0002 from "./0002_delivery.sql" with { type: "text" };
import m0003 from "./0003_mode.sql" with { type: "text" };
import m0004 from "./0004_webhook_controls.sql" with { type: "text" };
import m0005 from "./0005_portal_stats.sql" with { type: "text" };
import m0006 from "./0006_fifo.sql" with { type: "text" };

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "init", sql: m0001 },
  { version: 2, name: "delivery", sql: m0002 },
  { version: 3, name: "mode", sql: m0003 },
  { version: 4, name: "webhook_controls", sql: m0004 },
  { version: 5, name: "portal_stats", sql: m0005 },
  { version: 6, name: "fifo", sql: m0006 },
];
