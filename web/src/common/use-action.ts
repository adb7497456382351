// An action a view starts (a button, a form): busy while its work runs, then its outcome, what the
// work returned (ok) or the API's error described (not ok). Show it with <Outcome>.
import { useState } from "preact/hooks";
import { describeError } from "../api.ts";

/** What an action did: ok with the work's answer, or not ok with the error's text. */
export type ActionOutcome<R extends { text: string }> = { ok: boolean } & Partial<R> & { text: string };

export function useAction<R extends { text: string } = { text: string }>() {
  const [outcome, setOutcome] = useState<ActionOutcome<R> | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (work: () => Promise<R>) => {
    setBusy(true);
    setOutcome(null);
    try {
      setOutcome({ ok: true, ...(await work()) });
    } catch (error) {
      // Sound: every field of R but text is optional in an outcome (TypeScript cannot see it for a generic R).
      setOutcome({ ok: false, text: describeError(error) } as ActionOutcome<R>);
    } finally {
      setBusy(false);
    }
  };
  return { busy, outcome, setOutcome, run };
}
