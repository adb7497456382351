// Loaded before every test file (bunfig.toml): temp directories and PostgreSQL test
// databases made by tests are removed at exit.
import { afterAll } from "bun:test";
import { cleanupTestDatabases } from "./postgres.ts";
import { cleanupTempDirs } from "./temp.ts";

afterAll(async () => {
  cleanupTempDirs();
  await cleanupTestDatabases();
}, 60_000);
