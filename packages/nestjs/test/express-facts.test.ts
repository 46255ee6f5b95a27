import { MemorySink } from '@idstitch/core';
import { Controller, Get, Inject, Module } from '@nestjs/common';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { IdstitchModule, InjectTracker, type Tracker } from '../src/index.js';
import { boot } from './helpers.js';

const SECRET = 'nest-facts-test-secret-0123456789';

@Controller()
class PageController {
  constructor(
    @Inject(MemorySink) readonly sink: MemorySink,
    @InjectTracker() private readonly tracker: Tracker,
  ) {}

  @Get('page')
  page(): string {
    this.tracker.track('Viewed');
    return 'ok';
  }
}

const sink = new MemorySink();

@Module({
  imports: [IdstitchModule.forRoot({ sink, cookie: { secret: SECRET } })],
  controllers: [PageController],
  providers: [{ provide: MemorySink, useValue: sink }],
})
class PageModule {}

/** Counts reads of `key` through Express's own request object (`base`), answering as before. */
function countReads(base: object, key: string): { count: () => number; restore(): void } {
  const original = Object.getOwnPropertyDescriptor(base, key);
  let count = 0;
  Object.defineProperty(base, key, {
    configurable: true,
    enumerable: false,
    get(this: unknown) {
      count += 1;
      return original?.get ? original.get.call(this) : original?.value;
    },
  });
  return {
    count: () => count,
    restore: () => {
      if (original) Object.defineProperty(base, key, original);
      else delete (base as Record<string, unknown>)[key];
    },
  };
}

const restores: Array<() => void> = [];
afterEach(() => {
  for (const restore of restores.splice(0)) restore();
});

describe('Nest on Express: request facts', () => {
  it('reads neither req.secure nor req.raw (names Express never reads itself), and answers as before', async () => {
    const { app, server } = await boot(PageModule, 'express');
    // The app's `request` inherits from Express's own request object, where its getters are.
    const base = Object.getPrototypeOf(
      (app.getHttpAdapter().getInstance() as { request: object }).request,
    ) as object;
    const secure = countReads(base, 'secure');
    const raw = countReads(base, 'raw');
    restores.push(secure.restore, raw.restore);
    const response = await request(server).get('/page');
    expect(response.status).toBe(200);
    expect((response.headers['set-cookie'] as unknown as string[])[0]).toMatch(/^idstitch_device=/);
    expect(sink.events.at(-1)?.properties.$current_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/page$/);
    expect({ secure: secure.count(), raw: raw.count() }).toEqual({ secure: 0, raw: 0 });
  });

  it('leaves X-Forwarded-Proto to Express: not trusted by default', async () => {
    const { server } = await boot(PageModule, 'express');
    const response = await request(server).get('/page').set('X-Forwarded-Proto', 'https');
    expect((response.headers['set-cookie'] as unknown as string[])[0]).toMatch(/^idstitch_device=/);
    expect((response.headers['set-cookie'] as unknown as string[])[0]).not.toMatch(/; Secure/);
  });
});
