/**
 * Behaviour every adapter must share, over real HTTP: the cookie it sets, what it does with hostile cookies,
 * consent, and that tracking never breaks the request.
 */
import type { IdstitchError, OutgoingMessage, Sink } from '@idstitch/core';
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
    expect(line).toMatch(/; Max-Age=31536000/);
    expect(line).toMatch(/; Path=\//);
    expect(line).toMatch(/; HttpOnly/);
    expect(line).toMatch(/; SameSite=Lax/);
    expect(line).not.toMatch(/; Secure/);
    expect(cookieValue(line!)).toContain(sink.events[0]!.properties.$device_id);
    const second = await agent.get('/track/again').expect(204);
    expect(deviceCookies(second)).toEqual([]);
    expect(sink.events[1]!.properties.$device_id).toBe(sink.events[0]!.properties.$device_id);
  });

  it('replaces a tampered cookie with a new device and reports it', async () => {
    const { server, sink } = await start();
    const issued = cookieValue(deviceCookies(await request(server).get('/track/a'))[0]!);
    const tampered = issued.replace(/[0-9a-f](?=-)/, (digit) => (digit === '0' ? '1' : '0'));
    const response = await request(server)
      .get('/track/b')
      .set('Cookie', `${NAME}=${encodeURIComponent(tampered)}`)
      .expect(204);
    expect(deviceCookies(response)).toHaveLength(1);
    expect(sink.events[1]!.properties.$device_id).not.toBe(sink.events[0]!.properties.$device_id);
    expect(errors.map((error) => error.code)).toContain('tampered_cookie');
  });

  it('ignores a planted cookie that shadows the genuine one', async () => {
    const { server, sink } = await start();
    const issued = cookieValue(deviceCookies(await request(server).get('/track/a'))[0]!);
    const planted = `1.${'5'.repeat(8)}-5555-4555-9555-${'5'.repeat(12)}.`;
    await request(server)
      .get('/track/b')
      .set('Cookie', `${NAME}=${encodeURIComponent(planted)}; ${NAME}=${encodeURIComponent(issued)}`)
      .expect(204);
    expect(sink.events[1]!.properties.$device_id).toBe(sink.events[0]!.properties.$device_id);
    expect(errors.map((error) => error.code)).toContain('duplicate_cookie');
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
    const cookieChar = fc.constantFrom(...'abcXYZ019=;,% "\\.-_\t{}[]:é'.split(''));
    const header = fc.oneof(
      fc.string({ unit: cookieChar, maxLength: 300 }).map((noise) => `${NAME}=${noise}`),
      fc.string({ unit: cookieChar, maxLength: 300 }),
      fc
        .array(fc.string({ unit: cookieChar, maxLength: 60 }), { maxLength: 20 })
        .map((values) => values.map((v) => `${NAME}=${v}`).join('; ')),
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
