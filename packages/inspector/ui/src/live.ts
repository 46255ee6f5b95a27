import type { InspectorSnapshot } from '../../src/inspect/snapshot-types.ts';

export interface LiveHandlers {
  snapshot(snapshot: InspectorSnapshot): void;
  status(state: 'live' | 'reconnecting'): void;
}

/**
 * Follows the server's event stream (`api/stream`): a snapshot on connect and after every change. EventSource
 * reconnects by itself, and the server sends the latest snapshot on every connect.
 */
export function connect(handlers: LiveHandlers): () => void {
  const source = new EventSource('api/stream');
  source.addEventListener('snapshot', (event) => {
    handlers.snapshot(JSON.parse((event as MessageEvent<string>).data) as InspectorSnapshot);
  });
  source.addEventListener('open', () => handlers.status('live'));
  source.addEventListener('error', () => handlers.status('reconnecting'));
  return () => source.close();
}
