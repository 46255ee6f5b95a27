import { MemorySink } from '@idstitch/core';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function serve(sink: MemorySink) {
  const { app } = await createApp({ idstitch: { sink }, logger: false });
  await app.init();
  closers.push(() => app.close());
  return app.getHttpServer();
}

describe('example shop (NestJS)', () => {
  it('stitches browsing, login, purchase and logout', async () => {
    const sink = new MemorySink();
    const browser = request.agent(await serve(sink));
    await browser.get('/pricing').expect(200);
    await browser.post('/login').type('form').send({ userId: 'shopper-1' }).expect(303);
    await browser.post('/purchase').type('form').send({ amount: '19.99' }).expect(303);
    await browser.post('/logout').expect(303);
    const anonymous = await browser.get('/identity').expect(200);
    expect(sink.events.map((event) => [event.event, event.properties.$user_id ?? null])).toEqual([
      ['Page Viewed', null],
      ['Identified', 'shopper-1'],
      ['Purchase', 'shopper-1'],
    ]);
    expect(sink.events[2]!.properties).toMatchObject({
      amount: 19.99,
      order_id: expect.stringMatching(/^order-/),
      $device_id: sink.events[0]!.properties.$device_id,
    });
    expect(anonymous.body.userId).toBeUndefined();
    expect(anonymous.body.deviceId).not.toBe(sink.events[0]!.properties.$device_id);
    expect(sink.profileUpdates).toEqual([{ $distinct_id: 'shopper-1', $add: { purchases: 1 } }]);
  });

  it('serves the home page with a device cookie, tracked by @Track()', async () => {
    const sink = new MemorySink();
    const response = await request(await serve(sink))
      .get('/')
      .expect(200);
    expect(response.text).toContain('idstitch example shop (NestJS)');
    const cookies = response.headers['set-cookie'] as unknown as string[];
    expect(cookies.some((line) => line.startsWith('idstitch_device='))).toBe(true);
    expect(sink.events.map((event) => [event.event, event.properties.page])).toEqual([
      ['Page Viewed', 'home'],
    ]);
  });
});
