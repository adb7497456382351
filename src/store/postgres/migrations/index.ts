// The PostgreSQL schema migrations, embedded in the binary as text. Forward only: append, never edit.
// Their numbering is this driver's own (SQLite's versions 1 and 2 are this version 1).
import m0001 from "./0001_init.sql" with { type: "text" };
import m0002 from "./0002_mode.sql" with { type: "text" };
import m0003 from "./0003_webhook_controls.sql" with { type: "text" };
import m0004 from "./0004_portal_stats.sql" with { type: "text" };
import m0005 from "./0005_claim.sql" with { type: "text" };
import m0006 from "./0006_fifo.sql" with { type: "text" };
import m0007 from "./0007_calls.sql" with { type: "text" };
import m0008 from "./0008_lease_room.sql" with { type: "text" };
import m0009 from "./0009_raise_due.sql" with { type: "text" };

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "init", sql: m0001 },
  { version: 2, name: "mode", sql: m0002 },
  { version: 3, name: "webhook_controls", sql: m0003 },
  { version: 4, name: "portal_stats", sql: m0004 },
  { version: 5, name: "claim", sql: m0005 },
  { version: 6, name: "fifo", sql: m0006 },
  { version: 7, name: "calls", sql: m0007 },
  { version: 8, name: "lease_room", sql: m0008 },
  { version: 9, name: "raise_due", sql: m0009 },
];
