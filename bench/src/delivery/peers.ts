/** The SDKs of the delivery scenario, in table order. */
export const PEERS = [
  'idstitch',
  'idstitch-spool',
  'idstitch-discard',
  'mixpanel-track',
  'mixpanel-import-batch',
  'segment',
  'posthog',
  'posthog-defaults',
] as const;
export type Peer = (typeof PEERS)[number];

export const PEER_LABELS: Record<Peer, string> = {
  idstitch: 'idstitch MixpanelSink (/import, gzip, batches of 2000)',
  'idstitch-spool': 'idstitch MixpanelSink as above, with the disk spool on (issue 11; default fsync policy)',
  'idstitch-discard':
    'diagnostic: the same `forUser().track()` loop into a sink that discards (the tracker alone: no serialising, no delivery)',
  'mixpanel-track': 'mixpanel `track` per event (GET, 64 in flight)',
  'mixpanel-import-batch': 'mixpanel `import_batch` (POST form, 50 per request, 10 concurrent)',
  segment: '@segment/analytics-node (defaults: 15 per batch)',
  posthog: 'posthog-node (gzip, 100 per batch; `maxQueueSize` raised to hold the burst)',
  'posthog-defaults': 'posthog-node with its defaults (`maxQueueSize` 1000: drops the oldest of a burst)',
};

/** A peer counts for the targets only if it delivered (nearly) everything it was given. */
export const MIN_DELIVERED_FOR_TARGETS = 0.99;

/** idstitch's own rows: never a peer of the targets. */
export function isIdstitch(peer: Peer): boolean {
  return peer === 'idstitch' || peer === 'idstitch-spool' || peer === 'idstitch-discard';
}
