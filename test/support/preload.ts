// Loaded before every test file (bunfig.toml): temp directories made by tests are removed at exit.
import { afterAll } from "bun:test";
import { cleanupTempDirs } from "./temp.ts";

afterAll(() => {
  cleanupTempDirs();
});
