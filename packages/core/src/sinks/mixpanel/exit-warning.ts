/**
 * A script or serverless function that tracks and ends without `await sink.flush()` or `sink.close()` loses
 * what is queued: the sink's timers never hold the process open. This says so on the way out instead of
 * losing it without a word. One `exit` listener per process (a `Symbol.for` slot, shared by ESM and CJS
 * copies) looks at every sink that is still open; sinks are held weakly, so an abandoned sink is not kept.
 */
const OPEN_SINKS = Symbol.for('idstitch.mixpanel.openSinks');

/** What the warning needs from a sink. */
export interface ExitCheck {
  /** Messages accepted but not yet delivered or dropped. */
  queued(): number;
}

interface Slot {
  sinks: Set<WeakRef<ExitCheck>>;
}

function slot(): Slot {
  const slots = globalThis as { [OPEN_SINKS]?: Slot };
  if (slots[OPEN_SINKS] === undefined) {
    const created: Slot = { sinks: new Set() };
    slots[OPEN_SINKS] = created;
    // Workers have no process and no exit: a request's flush goes to `waitUntil` there instead.
    globalThis.process?.once?.('exit', () => warnAtExit(created));
  }
  return slots[OPEN_SINKS];
}

function warnAtExit({ sinks }: Slot): void {
  let queued = 0;
  for (const ref of sinks) queued += ref.deref()?.queued() ?? 0;
  if (queued === 0) return;
  process.stderr.write(
    `idstitch: the process is exiting with ${queued} message${queued === 1 ? '' : 's'} still queued in ` +
      'MixpanelSink, never sent. In a script or serverless function, end with `await sink.close(timeoutMs)` ' +
      '(or `await sink.flush()`) so they are delivered.\n',
  );
}

/** Watches an open sink; the returned function stops watching it (when it is closed). */
export function watchAtExit(sink: ExitCheck): () => void {
  const { sinks } = slot();
  // Drop the references of sinks that were collected without being closed.
  if (sinks.size >= 64) for (const ref of sinks) if (ref.deref() === undefined) sinks.delete(ref);
  const ref = new WeakRef(sink);
  sinks.add(ref);
  return () => {
    sinks.delete(ref);
  };
}
