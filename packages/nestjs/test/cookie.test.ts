import type { ServerResponse } from 'node:http';
import { MemorySink } from '@idstitch/core';
import { Controller, Get, Header, Inject, Module, Res } from '@nestjs/common';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { IdstitchModule, InjectTracker, type Tracker } from '../src/index.js';
import { boot, platforms } from './helpers.js';

const SECRET = 'nest-cookie-test-secret-0123456789';

/** Express's `res` or Fastify's reply: each platform's own way to add a cookie to the response. */
type PlatformResponse = {
  raw?: ServerResponse;
  cookie?: (name: string, value: string) => unknown;
  header?: (name: string, value: string) => unknown;
};

function addAppCookie(response: PlatformResponse): void {
  if (response.raw) response.header!('set-cookie', 'lang=fr; Path=/');
  else response.cookie!('lang', 'fr');
}

function nodeResponse(response: PlatformResponse): ServerResponse {
  return response.raw ?? (response as unknown as ServerResponse);
}

@Controller()
class CookieController {
  constructor(
    @Inject(MemorySink) readonly sink: MemorySink,
    @InjectTracker() private readonly tracker: Tracker,
  ) {}

  @Get('decorated')
  @Header('Set-Cookie', 'theme=dark; Path=/')
  decorated(): string {
    this.tracker.track('Decorated');
    return 'ok';
  }

  @Get('own')
  own(@Res({ passthrough: true }) response: PlatformResponse): { wrapped: boolean } {
    this.tracker.track('Own');
    addAppCookie(response);
    // The cookie is settled by a hook the platform already has (Express: the core's writeHead on its response
    // prototype; Fastify: onSend), not by wrapping each response's writeHead.
    return { wrapped: Object.hasOwn(nodeResponse(response), 'writeHead') };
  }

  @Get('fails')
  fails(): never {
    this.tracker.track('Failing');
    throw new Error('handler failed');
  }
}

function cookieNames(response: request.Response): string[] {
  return ((response.headers['set-cookie'] as unknown as string[] | undefined) ?? []).map(
    (line) => line.split('=')[0]!,
  );
}

describe.each(platforms)('device cookie alongside the app’s own on %s', (platform) => {
  async function start() {
    const sink = new MemorySink();
    @Module({
      imports: [IdstitchModule.forRoot({ sink, cookie: { secret: SECRET } })],
      controllers: [CookieController],
      providers: [{ provide: MemorySink, useValue: sink }],
    })
    class AppModule {}
    const { server } = await boot(AppModule, platform);
    return { server, sink };
  }

  it('appends the device cookie to a cookie set by @Header and one set on the response', async () => {
    const { server, sink } = await start();
    const decorated = await request(server).get('/decorated').expect(200);
    expect(cookieNames(decorated)).toEqual(['theme', 'idstitch_device']);
    const own = await request(server).get('/own').expect(200);
    expect(own.body).toEqual({ wrapped: false });
    expect(cookieNames(own)).toEqual(['lang', 'idstitch_device']);
    const devices = sink.events.map((event) => event.properties.$device_id);
    expect(sink.events.map((event) => event.event)).toEqual(['Decorated', 'Own']);
    expect(decorated.headers['set-cookie']![1]).toContain(devices[0]);
    expect(own.headers['set-cookie']![1]).toContain(devices[1]);
  });

  it('sets the device cookie on an error reply and keeps it once per name on a returning visit', async () => {
    const { server, sink } = await start();
    const failed = await request(server).get('/fails').expect(500);
    expect(cookieNames(failed)).toEqual(['idstitch_device']);
    const device = failed.headers['set-cookie']![0]!.split(';')[0]!;
    const again = await request(server).get('/decorated').set('Cookie', device).expect(200);
    // The cookie is still valid: nothing of ours to write again, and the app's is untouched.
    expect(cookieNames(again)).toEqual(['theme']);
    expect(new Set(sink.events.map((event) => event.properties.$device_id)).size).toBe(1);
  });
});
