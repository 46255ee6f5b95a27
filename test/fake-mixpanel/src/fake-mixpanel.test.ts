import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeMixpanel, startFakeMixpanel } from './index.js';

const TOKEN = 'contract-token';
let fake: FakeMixpanel;

beforeAll(async () => {
  fake = await startFakeMixpanel({
    token: TOKEN,
    serviceAccount: { username: 'sa', secret: 'sa-secret' },
    projectId: 77,
    apiSecret: 'api-secret',
    maxBatchMessages: 5,
    maxBodyBytes: 8 * 1024,
  });
});
afterEach(() => fake.clear());
afterAll(() => fake.close());

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const SA = basic('sa', 'sa-secret');

function event(name = 'E', properties: Record<string, unknown> = {}) {
  return {
    event: name,
    properties: {
      distinct_id: 'u1',
      time: Date.now(),
      $insert_id: randomUUID(),
      token: TOKEN,
      ...properties,
    },
  };
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const raw = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const gzip = headers['content-encoding'] === 'gzip';
  const response = await fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: gzip ? gzipSync(raw) : raw,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json, retryAfter: response.headers.get('retry-after') };
}

describe('fake Mixpanel: /import authentication', () => {
  it.each([
    ['no credentials', 401, {}],
    ['a wrong secret', 401, { authorization: basic('sa', 'nope') }],
    ['the token without the colon', 401, { authorization: `Basic ${Buffer.from(TOKEN).toString('base64')}` }],
    ['the token as user', 200, { authorization: basic(TOKEN, '') }],
    ['the API secret as user', 200, { authorization: basic('api-secret', '') }],
  ])('answers %s with %i', async (_, status, headers) => {
    expect((await post('/import?strict=1', [event()], headers)).status).toBe(status);
  });

  it('requires the project_id of the service account', async () => {
    expect((await post('/import?strict=1', [event()], { authorization: SA })).status).toBe(400);
    expect((await post('/import?strict=1&project_id=1', [event()], { authorization: SA })).status).toBe(403);
    const ok = await post('/import?strict=1&project_id=77', [event()], { authorization: SA });
    expect(ok).toMatchObject({ status: 200, json: { code: 200, num_records_imported: 1, status: 'OK' } });
  });
});

describe('fake Mixpanel: /import strict validation', () => {
  it('ingests the valid records and lists the others in failed_records', async () => {
    const good = event('Good');
    const response = await post(
      '/import?strict=1',
      [good, event('Bad id', { $insert_id: 'x y' }), event('Bad user', { distinct_id: 'null' })],
      { authorization: basic(TOKEN, '') },
    );
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({
      code: 400,
      num_records_imported: 1,
      failed_records: [
        { index: 1, insert_id: 'x y', field: 'properties.$insert_id' },
        { index: 2, field: 'properties.distinct_id' },
      ],
    });
    expect(fake.events.map((e) => e.event)).toEqual(['Good']);
  });

  it('can name records with $insert_id, as the prose docs do', async () => {
    const other = await startFakeMixpanel({ token: TOKEN, failedRecordsKey: '$insert_id' });
    try {
      const response = await fetch(`${other.url}/import?strict=1`, {
        method: 'POST',
        headers: { authorization: basic(TOKEN, ''), 'content-type': 'application/json' },
        body: JSON.stringify([event('Late', { time: 5 })]),
      });
      expect(await response.json()).toMatchObject({
        failed_records: [{ index: 0, $insert_id: expect.any(String) }],
      });
    } finally {
      await other.close();
    }
  });

  it('without strict=1 drops invalid records silently', async () => {
    const response = await post('/import', [event(), event('Bad', { time: 'noon' })], {
      authorization: basic(TOKEN, ''),
    });
    expect(response).toMatchObject({ status: 200, json: { num_records_imported: 1 } });
  });

  it('accepts gzip bodies and deduplicates on $insert_id', async () => {
    const once = event('Once');
    const headers = { authorization: basic(TOKEN, ''), 'content-encoding': 'gzip' };
    await post('/import?strict=1', [once], headers);
    await post('/import?strict=1', [once], headers);
    expect(fake.events).toHaveLength(1);
    expect(fake.counters.duplicates).toBe(1);
    expect(fake.requests.every((r) => r.gzip)).toBe(true);
  });

  it('answers 413 over the byte and record limits', async () => {
    const auth = { authorization: basic(TOKEN, '') };
    const big = await post('/import?strict=1', [event('Big', { blob: 'x'.repeat(9000) })], auth);
    expect(big).toMatchObject({ status: 413, json: { code: 413, status: 'Request Entity Too Large' } });
    const many = await post(
      '/import?strict=1',
      Array.from({ length: 6 }, () => event()),
      auth,
    );
    expect(many.status).toBe(413);
    expect(fake.events).toHaveLength(0);
  });
});

describe('fake Mixpanel: /track, /engage, /groups', () => {
  it('answers /track with 1/0, or {status, error} when verbose', async () => {
    expect((await post('/track', [event()])).text).toBe('1');
    expect((await post('/track', [event('E', { token: 'wrong' })])).text).toBe('0');
    expect((await post('/track?verbose=1', [event()])).json).toEqual({ status: 1, error: null });
    expect((await post('/track?verbose=1', [event('E', { token: 'wrong' })])).json).toMatchObject({
      status: 0,
    });
  });

  it('answers success for /track events older than 5 days but never stores them', async () => {
    const old = event('Old', { time: Date.now() - 6 * 24 * 3_600_000 });
    expect((await post('/track?verbose=1', [old])).json).toEqual({ status: 1, error: null });
    expect(fake.events).toHaveLength(0);
    expect(fake.counters.silentlyDropped).toBe(1);
  });

  it('applies every /engage operation to the profile', async () => {
    const updates = [
      { $set: { name: 'Ada', plan: 'free' } },
      { $set_once: { name: 'Not Ada', first_seen: 'today' } },
      { $add: { logins: 2 } },
      { $add: { logins: -1 } },
      { $append: { tags: 'a' } },
      { $union: { tags: ['a', 'b'] } },
      { $remove: { tags: 'a' } },
      { $unset: ['plan'] },
    ].map((op) => ({ $token: TOKEN, $distinct_id: 'ada', ...op }));
    // Two requests: this fake allows 5 records per request.
    expect((await post('/engage?verbose=1&ip=0', updates.slice(0, 4))).json).toEqual({
      status: 1,
      error: null,
    });
    expect((await post('/engage?verbose=1&ip=0', updates.slice(4))).json).toEqual({ status: 1, error: null });
    expect(fake.profileState('ada')).toEqual({ name: 'Ada', first_seen: 'today', logins: 1, tags: ['b'] });
    expect(fake.profiles.every((p) => p.ipParam === '0')).toBe(true);
    await post('/engage?verbose=1', [{ $token: TOKEN, $distinct_id: 'ada', $delete: '' }]);
    expect(fake.profileState('ada')).toBeUndefined();
  });

  it('refuses gzip on /engage and /groups, and $add on groups', async () => {
    const update = { $token: TOKEN, $distinct_id: 'u', $set: { a: 1 } };
    expect((await post('/engage?verbose=1', [update], { 'content-encoding': 'gzip' })).status).toBe(400);
    const group = { $token: TOKEN, $group_key: 'company', $group_id: 'acme' };
    expect((await post('/groups?verbose=1', [{ ...group, $add: { seats: 1 } }])).json).toMatchObject({
      status: 0,
    });
    expect((await post('/groups?verbose=1', [{ ...group, $set: { seats: 1 } }])).json).toEqual({
      status: 1,
      error: null,
    });
    expect(fake.groupState('company', 'acme')).toEqual({ seats: 1 });
  });
});

describe('fake Mixpanel: faults', () => {
  it('plays queued faults in order, per endpoint when asked, then answers normally', async () => {
    fake.fail(
      { kind: 'status', status: 429, retryAfter: 3 },
      { kind: 'status', status: 503, endpoint: 'engage' },
      { kind: 'status', status: 500 },
    );
    const first = await post('/track', [event()]);
    expect(first).toMatchObject({ status: 429, retryAfter: '3', json: { code: 429 } });
    expect((await post('/track', [event()])).status).toBe(500);
    expect((await post('/engage', [{ $token: TOKEN, $distinct_id: 'u', $set: {} }])).status).toBe(503);
    expect((await post('/track', [event()])).status).toBe(200);
    expect(fake.pendingFaults).toBe(0);
    expect(fake.requests.map((r) => r.fault)).toEqual(['status', 'status', 'status', undefined]);
  });

  it('resets the connection before answering, ingesting nothing', async () => {
    fake.fail({ kind: 'reset' });
    await expect(post('/track', [event()])).rejects.toThrow();
    expect(fake.events).toHaveLength(0);
  });

  it('resets mid-response after ingesting, so the client never sees the acknowledgement', async () => {
    fake.fail({ kind: 'resetMidResponse' });
    await expect(post('/track', [event()])).rejects.toThrow();
    expect(fake.events).toHaveLength(1);
  });

  it('delays, hangs, and uses a fault policy', async () => {
    fake.fail({ kind: 'delay', ms: 30 }, { kind: 'hang' });
    expect((await post('/track', [event()])).status).toBe(200);
    await expect(
      fetch(`${fake.url}/track`, { method: 'POST', body: '[]', signal: AbortSignal.timeout(50) }),
    ).rejects.toThrow();
    fake.setFaultPolicy((request) => (request.index % 2 === 0 ? { kind: 'status', status: 502 } : undefined));
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await post('/track', [event()])).status);
    expect(statuses.sort()).toEqual([200, 200, 502, 502]);
  });

  it('goes down and comes back on the same port', async () => {
    const url = fake.url;
    await fake.goDown();
    await expect(post('/track', [event()])).rejects.toThrow();
    await fake.comeBack();
    expect(fake.url).toBe(url);
    expect((await post('/track', [event()])).status).toBe(200);
  });
});

describe("mixpanel-browser's requests", () => {
  it('answers CORS with credentials, preflight included, as the browser endpoints do', async () => {
    const preflight = await fetch(`${fake.url}/track/`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://shop.test',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://shop.test');
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('content-type');
    expect(fake.requests).toHaveLength(0);
  });

  it('accepts form `data=` as URL-encoded JSON or base64, with verbose=1, ip=1 and a cache-buster', async () => {
    const sdkEvent = (name: string) => ({
      event: name,
      properties: {
        distinct_id: '$device:d1',
        $device_id: 'd1',
        time: Date.now() / 1000,
        $insert_id: 'k3j2h1g0f9e8d7c6',
        token: TOKEN,
      },
    });
    const json = `data=${encodeURIComponent(JSON.stringify([sdkEvent('Json')]))}`;
    const base64 = `data=${encodeURIComponent(Buffer.from(JSON.stringify([sdkEvent('Base64')])).toString('base64'))}`;
    for (const body of [json, base64]) {
      const response = await fetch(`${fake.url}/track/?verbose=1&ip=1&_=1700000000000`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://shop.test' },
        body,
      });
      expect(await response.json()).toEqual({ status: 1, error: null });
      expect(response.headers.get('access-control-allow-origin')).toBe('http://shop.test');
    }
    expect(fake.events.map((stored) => stored.event)).toEqual(['Json', 'Base64']);
    expect(fake.requests.map((request) => request.query.ip)).toEqual(['1', '1']);
  });
});
