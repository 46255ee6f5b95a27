/**
 * Behaviour every adapter must share, over real HTTP: the cookie it sets, what it does with hostile cookies,
 * consent, and that tracking never breaks the request.
 */
import { IDENTITY_FIELDS, type IdstitchError, type OutgoingMessage, type Sink } from '@idstitch/core';
import fc from 'fast-check';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { harnesses } from './harness/index.js';
import type { RunningApp } from './harness/types.js';

const NAME = 'idstitch_device';

/** Our cookie's Set-Cookie lines (a framework's own signature cookie, like Koa's `.sig`, is not ours). */
function deviceCookies(response: request.Response): string[] {
  const lines = (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  return lines.filter((line) => line.startsWith(`${NAME}=`));
}

function cookieValue(line: string): string {
  return decodeURIComponent(line.slice(NAME.length + 1, line.indexOf(';')));
}

/**
 * The Cookie header a browser would send back after `response`: every cookie it set, companions included (Koa
 * signs ours with an `idstitch_device.sig` cookie). `device` replaces our cookie's value; `before` plants a
 * cookie ahead of the rest.
 */
function cookieHeaderAfter(
  response: request.Response,
  change: { device?: string; before?: string } = {},
): string {
  const lines = (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  const sent = lines
    .map((line) => line.slice(0, line.indexOf(';')))
    .map((pair) =>
      change.device !== undefined && pair.startsWith(`${NAME}=`)
        ? `${NAME}=${encodeURIComponent(change.device)}`
        : pair,
    );
  return [change.before, ...sent].filter(Boolean).join('; ');
}

/** Max-Age, or Expires where the framework writes that instead (Koa's cookies), in seconds from now. */
function lifetimeSeconds(line: string): number {
  const maxAge = /; Max-Age=(\d+)/i.exec(line)?.[1];
  if (maxAge !== undefined) return Number(maxAge);
  const expires = /; Expires=([^;]+)/i.exec(line)?.[1];
  return expires === undefined ? Number.NaN : (Date.parse(expires) - Date.now()) / 1000;
}

describe.each(harnesses)('shared behaviour through $name', (harness) => {
  let app: RunningApp | undefined;
  const errors: IdstitchError[] = [];
  const start = async (options: object = {}) => {
    errors.length = 0;
    app = await harness.start({ onError: (error: IdstitchError) => errors.push(error), ...options } as never);
    return app;
  };
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('sets one signed, HttpOnly, SameSite=Lax device cookie on the first visit and none after', async () => {
    const { server, sink } = await start();
    const agent = request.agent(server);
    const first = await agent.get('/track/landing').expect(204);
    const [line, ...more] = deviceCookies(first);
    expect(more).toEqual([]);
    expect(lifetimeSeconds(line!)).toBeGreaterThan(31_536_000 - 60);
    expect(lifetimeSeconds(line!)).toBeLessThanOrEqual(31_536_000);
    expect(line).toMatch(/; Path=\//i);
    expect(line).toMatch(/; HttpOnly/i);
    expect(line).toMatch(/; SameSite=Lax/i);
    expect(line).not.toMatch(/; Secure/i);
    expect(cookieValue(line!)).toContain(sink.events[0]!.properties.$device_id);
    const second = await agent.get('/track/again').expect(204);
    expect(deviceCookies(second)).toEqual([]);
    expect(sink.events[1]!.properties.$device_id).toBe(sink.events[0]!.properties.$device_id);
  });

  it('replaces a tampered cookie with a new device and reports it', async () => {
    const { server, sink } = await start();
    const first = await request(server).get('/track/a');
    const issued = cookieValue(deviceCookies(first)[0]!);
    const tampered = issued.replace(/[0-9a-f](?=-)/, (digit) => (digit === '0' ? '1' : '0'));
    const response = await request(server)
      .get('/track/b')
      .set('Cookie', cookieHeaderAfter(first, { device: tampered }))
      .expect(204);
    expect(deviceCookies(response)).toHaveLength(1);
    expect(sink.events[1]!.properties.$device_id).not.toBe(sink.events[0]!.properties.$device_id);
    expect(errors.map((error) => error.code)).toContain('tampered_cookie');
  });

  it('ignores a planted cookie that shadows the genuine one', async () => {
    const { server, sink } = await start();
    const first = await request(server).get('/track/a');
    const planted = `1.${'5'.repeat(8)}-5555-4555-9555-${'5'.repeat(12)}.`;
    await request(server)
      .get('/track/b')
      .set('Cookie', cookieHeaderAfter(first, { before: `${NAME}=${encodeURIComponent(planted)}` }))
      .expect(204);
    expect(sink.events[1]!.properties.$device_id).toBe(sink.events[0]!.properties.$device_id);
    expect(errors.map((error) => error.code)).toContain('duplicate_cookie');
  });

  it('never links a planted genuine cookie to the victim at login (device fixation)', async () => {
    const { server, sink } = await start();
    const attacker = await request(server).get('/track/attacker').expect(204);
    const victim = await request(server).get('/track/victim').expect(204);
    const attackerDevice = sink.events[0]!.properties.$device_id;
    const victimDevice = sink.events[1]!.properties.$device_id;
    // The attacker's cookie (set for a parent domain) is sent first, then the victim's own.
    const planted = cookieHeaderAfter(attacker);
    const both = `${planted}; ${cookieHeaderAfter(victim)}`;
    sink.clear();
    const login = await request(server).post('/login/victim').set('Cookie', both).expect(204);
    const session = ((login.headers['set-cookie'] as unknown as string[] | undefined) ?? [])
      .filter((line) => !line.startsWith(NAME))
      .map((line) => line.slice(0, line.indexOf(';')))
      .join('; ');
    await request(server).get('/track/after').set('Cookie', `${both}; ${session}`).expect(204);
    const linked = sink.events.filter((event) => event.properties.$user_id === 'victim');
    expect(linked.length).toBeGreaterThan(0);
    for (const event of linked) expect(event.properties.$device_id).not.toBe(attackerDevice);
    expect(victimDevice).not.toBe(attackerDevice);
  });

  it('tracks nothing and sets no cookie for a visitor sending Sec-GPC: 1', async () => {
    const { server, sink } = await start();
    const response = await request(server).get('/track/a').set('Sec-GPC', '1').expect(204);
    expect(deviceCookies(response)).toEqual([]);
    expect(sink.events).toEqual([]);
    expect(sink.dropped.consent).toBe(1);
  });

  it('answers every request and sets a well-formed cookie whatever the Cookie header holds', async () => {
    const { server } = await start({ onError: () => {} });
    // Genuine cookies (with any framework companions) of two other visitors, planted among the noise.
    const genuine = [
      cookieHeaderAfter(await request(server).get('/track/one')),
      cookieHeaderAfter(await request(server).get('/track/two')),
    ];
    const cookieChar = fc.constantFrom(...'abcXYZ019=;,% "\\.-_\t{}[]:é'.split(''));
    const header = fc.oneof(
      fc.string({ unit: cookieChar, maxLength: 300 }).map((noise) => `${NAME}=${noise}`),
      fc.string({ unit: cookieChar, maxLength: 300 }),
      fc
        .array(fc.string({ unit: cookieChar, maxLength: 60 }), { maxLength: 20 })
        .map((values) => values.map((v) => `${NAME}=${v}`).join('; ')),
      fc
        .array(fc.oneof(fc.constantFrom(...genuine), fc.string({ unit: cookieChar, maxLength: 40 })), {
          minLength: 1,
          maxLength: 4,
        })
        .map((parts) => parts.join('; ')),
    );
    await fc.assert(
      fc.asyncProperty(header, async (cookie) => {
        const response = await request(server).get('/track/fuzz').set('Cookie', cookie);
        expect(response.status).toBe(204);
        for (const line of deviceCookies(response)) {
          expect(line).not.toMatch(/[\r\n\0]/);
          expect(cookieValue(line)).toMatch(/^1\.[0-9a-f-]{36}\.([A-Za-z0-9_-]{16})?\.[A-Za-z0-9_-]{43}$/);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never lets a JSON request body choose an identity field, signed in or not', async () => {
    const { server, sink } = await start({ onError: () => {} });
    const identityKey = fc.constantFrom(...IDENTITY_FIELDS);
    const forged = fc.constantFrom(
      'victim@example.com',
      '$device:forged',
      'forged-0000-4000-8000-000000000000',
    );
    const body = fc
      .tuple(
        fc.dictionary(identityKey, forged, { minKeys: 1 }),
        fc.dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
        // No `__proto__` key at any depth: Fastify refuses such a body with 400 before any handler runs (its
        // documented prototype-poisoning guard), which is not what this property is about.
      )
      .filter(([, rest]) => !JSON.stringify(rest).includes('"__proto__"'));
    const agent = request.agent(server);
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async ([identity, rest], signedIn) => {
        sink.clear();
        if (signedIn) await agent.post('/login/u1').expect(204);
        await agent
          .post('/track-body/Searched')
          .send({ ...rest, ...identity })
          .expect(204);
        if (signedIn) await agent.post('/logout').expect(204);
        for (const event of sink.events) {
          for (const key of IDENTITY_FIELDS) {
            const value = event.properties[key];
            expect(typeof value === 'string' && /victim|forged/.test(value)).toBe(false);
          }
          expect(event.properties.$device_id).toMatch(
            /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
          );
          expect(event.properties.$user_id).toBe(signedIn ? 'u1' : undefined);
        }
        expect(sink.eventsNamed('Searched')).toHaveLength(1);
      }),
      { numRuns: 40 },
    );
  });

  it('still answers the request when the sink throws', async () => {
    const broken: Sink = {
      write(_message: OutgoingMessage) {
        throw new Error('sink exploded');
      },
      flush: async () => {},
      close: async () => {},
    };
    const { server } = await start({ sink: broken });
    await request(server).get('/track/a').expect(204);
    expect(errors.map((error) => error.code)).toContain('delivery_failed');
  });
});
