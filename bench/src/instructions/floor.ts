/**
 * The floor: what one tracked request cannot avoid, each part measured on its own in the same run. One HMAC
 * verification of a device cookie (createHmac-SHA256 + constant-time compare), one `crypto.randomUUID()` (the
 * event's `$insert_id`), serialising the event as sent (about 315 bytes of JSON), and its share of gzip over a
 * batch of such events (level 6, Node's default, and level 1). `unit(i)` is one request's worth; `settle()`
 * runs at the end of a phase (gzip compresses the phase's batch there).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { COOKIE_SECRET, TOKEN, USER_AGENT } from '../lib/fixtures.js';

const gzip = promisify(gzipCallback);

export const FLOOR_PARTS = ['hmac', 'uuid', 'serialize', 'gzip6', 'gzip1'] as const;
export type FloorPart = (typeof FLOOR_PARTS)[number];
/** The parts whose sum is the floor (level 1 is shown beside level 6, not added). */
export const FLOOR_SUM: readonly FloorPart[] = ['hmac', 'uuid', 'serialize', 'gzip6'];

export const FLOOR_LABELS: Record<FloorPart, string> = {
  hmac: 'one HMAC-SHA256 verification of the device cookie',
  uuid: 'one `crypto.randomUUID()` (`$insert_id`)',
  serialize: 'serialising the event (JSON, ~315 bytes)',
  gzip6: "the event's share of gzip level 6 over a batch",
  gzip1: "the event's share of gzip level 1 over a batch (not in the sum)",
};

export interface FloorWork {
  unit(i: number): void;
  settle(): Promise<void>;
}

/** The event as idstitch sends it: stamped identity, time, insert ID, library fields, the route's properties. */
function event(i: number): Record<string, unknown> {
  return {
    event: 'Page Viewed',
    properties: {
      plan: 'pro',
      section: 'home',
      $pathname: '/',
      $user_agent: USER_AGENT,
      distinct_id: 'user-42',
      $device_id: '0b8c6d3e-9a4f-4e21-8c55-1f2d3e4a5b6c',
      $user_id: 'user-42',
      time: 1_764_900_000_000 + i,
      $insert_id: `4b7c1d2e8f9a0b3c${String(i).padStart(16, '0')}`,
      token: TOKEN,
    },
  };
}

/** Results fold into this, so that no work can be optimised away. */
export let floorChecksum = 0;

export function floorWork(part: FloorPart): FloorWork {
  switch (part) {
    case 'hmac': {
      const payload = '1.0b8c6d3e-9a4f-4e21-8c55-1f2d3e4a5b6c.AbCdEfGhIjKlMnOp';
      const signature = createHmac('sha256', COOKIE_SECRET).update(payload).digest('base64url');
      const expected = Buffer.from(signature);
      return {
        unit() {
          const actual = Buffer.from(createHmac('sha256', COOKIE_SECRET).update(payload).digest('base64url'));
          if (actual.length === expected.length && timingSafeEqual(actual, expected)) floorChecksum += 1;
        },
        settle: async () => {},
      };
    }
    case 'uuid':
      return {
        unit() {
          floorChecksum += randomUUID().length;
        },
        settle: async () => {},
      };
    case 'serialize':
      return {
        unit(i) {
          floorChecksum += JSON.stringify(event(i)).length;
        },
        settle: async () => {},
      };
    case 'gzip6':
    case 'gzip1': {
      const level = part === 'gzip6' ? 6 : 1;
      // The lines are made before the phase starts counting their compression: only gzip is measured here.
      let lines: string[] = [];
      const ready: string[] = [];
      for (let i = 0; i < 4000; i++) ready.push(JSON.stringify(event(i)));
      let next = 0;
      return {
        unit() {
          lines.push(ready[next++ % ready.length] as string);
        },
        async settle() {
          const body = `[${lines.join(',')}]`;
          lines = [];
          floorChecksum += (await gzip(body, { level })).length;
        },
      };
    }
    default:
      throw new Error(`unknown floor part ${String(part)}`);
  }
}
