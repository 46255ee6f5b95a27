/**
 * Canaries for constructor injection. Nest resolves an un-annotated constructor parameter from the
 * `design:paramtypes` metadata the compiler emits, which SWC (these tests) does and tsx/esbuild (the examples'
 * `start`) silently does not. The first test fails loudly if the test toolchain stops emitting it; the second
 * proves @idstitch/nestjs needs none, because every parameter it declares says `@Inject(TOKEN)`.
 */
import { MemorySink } from '@idstitch/core';
import { Controller, Get, Injectable, Module } from '@nestjs/common';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { IdstitchModule, InjectTracker, Tracker } from '../src/index.js';
import { boot } from './helpers.js';

const PARAMTYPES = 'design:paramtypes';
const reflect = Reflect as unknown as {
  getMetadata(key: string, target: object): unknown;
  deleteMetadata(key: string, target: object): boolean;
};

@Injectable()
class Clock {
  now(): string {
    return 'tick';
  }
}

@Injectable()
class ImplicitlyInjected {
  // No @Inject(): only decorator metadata tells Nest what to pass.
  constructor(readonly clock: Clock) {}
}

describe('constructor injection', () => {
  it('canary: the test toolchain emits decorator metadata (un-annotated parameters resolve)', async () => {
    expect(reflect.getMetadata(PARAMTYPES, ImplicitlyInjected), 'unplugin-swc must emit metadata').toEqual([
      Clock,
    ]);
    @Module({
      imports: [IdstitchModule.forRoot({ sink: new MemorySink() })],
      providers: [Clock, ImplicitlyInjected],
    })
    class AppModule {}
    const { app } = await boot(AppModule, 'express');
    expect(app.get(ImplicitlyInjected).clock.now()).toBe('tick');
    // Nest's metadata path works for the package's own class too.
    expect(app.get(Tracker)).toBeInstanceOf(Tracker);
  });

  it('works without any decorator metadata, as under tsx/esbuild', async () => {
    @Controller()
    class PingController {
      constructor(@InjectTracker() private readonly tracker: Tracker) {}
      @Get('ping')
      ping(): string {
        this.tracker.track('Pinged');
        return 'pong';
      }
    }
    for (const target of [IdstitchModule, PingController]) reflect.deleteMetadata(PARAMTYPES, target);
    expect(reflect.getMetadata(PARAMTYPES, IdstitchModule)).toBeUndefined();
    const sink = new MemorySink();
    @Module({ imports: [IdstitchModule.forRoot({ sink })], controllers: [PingController] })
    class AppModule {}
    const { server } = await boot(AppModule, 'express');
    await request(server).get('/ping').expect(200, 'pong');
    expect(sink.events.map((event) => event.event)).toEqual(['Pinged']);
  });
});
