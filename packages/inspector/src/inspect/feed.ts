import { buildSnapshot } from './snapshot.js';
import type { InspectorSnapshot } from './snapshot-types.js';
import type { RecordSource } from './source.js';

function problemOf(error: unknown, label: string): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  if (code === 'ENOENT') {
    return label.startsWith('spool ')
      ? 'Nothing spooled yet: the spool directory does not exist. It appears once the app’s MixpanelSink spools a message.'
      : 'Nothing recorded yet: the file does not exist. Start the app without a Mixpanel token and make a few requests.';
  }
  return `The records cannot be read (${code || (error instanceof Error ? error.message : String(error))}).`;
}

/**
 * The current snapshot of one source, rebuilt when the source changes and pushed to subscribers. The source
 * is watched only while someone is subscribed; rebuilds are coalesced (`debounceMs`) and never overlap.
 */
export class SnapshotFeed {
  private revision = 0;
  private latest: Promise<InspectorSnapshot> | undefined;
  private readonly subscribers = new Set<(snapshot: InspectorSnapshot) => void>();
  private stopWatching: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private building: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly source: RecordSource,
    private readonly debounceMs = 50,
  ) {}

  /** The snapshot of what is recorded now (built at most once per change). */
  current(): Promise<InspectorSnapshot> {
    this.latest ??= this.rebuild();
    return this.latest;
  }

  /** Calls `listener` with every new snapshot until the returned function is called. */
  subscribe(listener: (snapshot: InspectorSnapshot) => void): () => void {
    this.subscribers.add(listener);
    this.stopWatching ??= this.source.watch(() => this.changed());
    return () => {
      this.subscribers.delete(listener);
      if (this.subscribers.size === 0) this.close();
    };
  }

  /** Stops watching the source (its connections are the owner's to close: {@link RecordSource.close}). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  private changed(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const next = this.rebuild();
      this.latest = next;
      void next.then((snapshot) => {
        if (this.latest !== next) return;
        for (const listener of this.subscribers) listener(snapshot);
      });
    }, this.debounceMs);
  }

  private rebuild(): Promise<InspectorSnapshot> {
    const run = this.building.then(async () => {
      const revision = ++this.revision;
      const mode = this.source.mode === undefined ? {} : { mode: this.source.mode };
      try {
        const records = await this.source.read();
        return buildSnapshot(records, { source: this.source.label, revision, ...mode });
      } catch (error) {
        return buildSnapshot(
          { messages: [], lineNumbers: [], unreadable: [] },
          { source: this.source.label, revision, ...mode, problem: problemOf(error, this.source.label) },
        );
      }
    });
    this.building = run;
    return run;
  }
}
