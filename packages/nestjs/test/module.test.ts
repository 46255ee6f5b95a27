import type { IdstitchOptions, OutgoingMessage, Sink } from '@idstitch/core';
import { MemorySink } from '@idstitch/core';
import { Controller, Get, Inject, Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import {
  IDSTITCH,
  type Idstitch,
  IdstitchModule,
  type IdstitchOptionsFactory,
  InjectTracker,
  type Tracker,
} from '../src/index.js';
import { boot, closeNow, platforms } from './helpers.js';

/** Holds messages until flushed, like a batching sink: `delivered` is what reached "Mixpanel". */
class BatchingSink implements Sink {
  pending: OutgoingMessage[] = [];
  delivered: OutgoingMessage[] = [];
  closed = false;
  write(message: OutgoingMessage): void {
    this.pending.push(message);
  }
  async flush(): Promise<void> {
    this.delivered.push(...this.pending.splice(0));
  }
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }
}

@Controller()
class PingController {
  constructor(@InjectTracker() private readonly tracker: Tracker) {}
  @Get('ping')
  ping(): string {
    this.tracker.track('Pinged');
    return 'pong';
  }
}

/** The configuration a ConfigService would load from the environment. */
const configuration = () => ({ idstitch: { cookieName: 'sid_device', idMerge: 'original' as const } });

const sinks = new Map<string, MemorySink>();

/** A class-based options factory that itself needs ConfigService. */
@Injectable()
class IdstitchConfig implements IdstitchOptionsFactory {
  constructor(@Inject(ConfigService) private readonly config: ConfigService) {}
  createIdstitchOptions(): IdstitchOptions {
    const sink = new MemorySink();
    sinks.set('class', sink);
    return { sink, cookie: { name: this.config.getOrThrow<string>('idstitch.cookieName') } };
  }
}

describe.each(platforms)('IdstitchModule on %s', (platform) => {
  it('forRootAsync: builds the options from ConfigService with useFactory', async () => {
    const sink = new MemorySink();
    @Module({
      imports: [
        ConfigModule.forRoot({ load: [configuration], ignoreEnvFile: true }),
        IdstitchModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: async (config: ConfigService) => ({
            sink,
            idMerge: config.getOrThrow<'original'>('idstitch.idMerge'),
            cookie: { name: config.getOrThrow<string>('idstitch.cookieName') },
          }),
        }),
      ],
      controllers: [PingController],
    })
    class AppModule {}
    const { server } = await boot(AppModule, platform);
    const response = await request(server).get('/ping').expect(200, 'pong');
    expect(String(response.headers['set-cookie'])).toMatch(/^sid_device=/);
    // Original ID Merge: the anonymous distinct_id is the bare device ID.
    expect(sink.events[0]!.properties.distinct_id).toBe(sink.events[0]!.properties.$device_id);
  });

  it('forRootAsync: useClass instantiates an options factory with its own dependencies', async () => {
    @Module({
      imports: [
        ConfigModule.forRoot({ load: [configuration], ignoreEnvFile: true }),
        IdstitchModule.forRootAsync({ imports: [ConfigModule], useClass: IdstitchConfig }),
      ],
      controllers: [PingController],
    })
    class AppModule {}
    const { server } = await boot(AppModule, platform);
    const response = await request(server).get('/ping').expect(200);
    expect(String(response.headers['set-cookie'])).toMatch(/^sid_device=/);
    expect(sinks.get('class')!.events.map((event) => event.event)).toEqual(['Pinged']);
  });

  it('is global by default: a feature module injects Tracker without importing IdstitchModule', async () => {
    const sink = new MemorySink();
    @Module({ controllers: [PingController] })
    class FeatureModule {}
    @Module({ imports: [IdstitchModule.forRoot({ sink }), FeatureModule] })
    class AppModule {}
    const { server } = await boot(AppModule, platform);
    await request(server).get('/ping').expect(200);
    expect(sink.events).toHaveLength(1);
  });

  it('resolveUserId overrides the default with the platform request (typed by forRoot<Req>)', async () => {
    const sink = new MemorySink();
    interface ApiKeyRequest {
      headers: Record<string, string | string[] | undefined>;
    }
    @Module({
      imports: [
        IdstitchModule.forRoot<ApiKeyRequest>({ sink, resolveUserId: (req) => req.headers['x-api-user'] }),
      ],
      controllers: [PingController],
    })
    class AppModule {}
    const { server } = await boot(AppModule, platform);
    await request(server).get('/ping').set('x-api-user', 'api-7').expect(200);
    expect(sink.events.map((event) => [event.event, event.properties.$user_id])).toEqual([
      ['Identified', 'api-7'],
      ['Pinged', 'api-7'],
    ]);
  });

  it('flushes and closes the sink on app.close()', async () => {
    const sink = new BatchingSink();
    @Module({ imports: [IdstitchModule.forRoot({ sink })], controllers: [PingController] })
    class AppModule {}
    const { app, server } = await boot(AppModule, platform);
    await request(server).get('/ping').expect(200);
    expect(sink.delivered).toHaveLength(0);
    await closeNow(app);
    expect(sink.closed).toBe(true);
    expect(sink.delivered.map((message) => message.kind === 'event' && message.payload.event)).toEqual([
      'Pinged',
    ]);
  });
});

describe('IdstitchModule wiring', () => {
  it('forRootAsync: useExisting reuses a provider exported by another module', async () => {
    @Module({
      imports: [ConfigModule.forRoot({ load: [configuration], ignoreEnvFile: true })],
      providers: [IdstitchConfig],
      exports: [IdstitchConfig],
    })
    class SettingsModule {}
    @Module({
      imports: [IdstitchModule.forRootAsync({ imports: [SettingsModule], useExisting: IdstitchConfig })],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const engine = app.get<Idstitch>(IDSTITCH);
    expect(engine.options.cookie.name).toBe('sid_device');
    await app.close();
  });

  it('global: false keeps Tracker inside the modules that import IdstitchModule', async () => {
    @Module({ controllers: [PingController] })
    class FeatureModule {}
    @Module({ imports: [IdstitchModule.forRoot({ global: false }), FeatureModule] })
    class AppModule {}
    await expect(NestFactory.create(AppModule, { logger: false, abortOnError: false })).rejects.toThrow(
      /Tracker/,
    );
  });

  it('forRootAsync without a factory is a TypeError naming the fix', () => {
    expect(() => IdstitchModule.forRootAsync({})).toThrow(
      /^idstitch: IdstitchModule\.forRootAsync\(\) needs exactly one of `useFactory`, `useClass` or `useExisting`/,
    );
  });

  it('bad options fail at start-up with the core’s message', async () => {
    @Module({ imports: [IdstitchModule.forRoot({ cookie: { maxAge: 1000 * 60 * 60 * 24 * 365 } })] })
    class AppModule {}
    await expect(
      NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow(/idstitch: option `cookie\.maxAge`/);
  });
});
