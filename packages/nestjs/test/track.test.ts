import { type IdstitchError, MemorySink } from '@idstitch/core';
import {
  Body,
  type CanActivate,
  Controller,
  type ExecutionContext,
  Get,
  Inject,
  Injectable,
  Module,
  NotFoundException,
  Param,
  Post,
  UseGuards,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { lastValueFrom, type Observable, of, throwError } from 'rxjs';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { IdstitchModule, TRACK_METADATA, Track, type TrackMetadata } from '../src/index.js';
import { boot, platforms } from './helpers.js';

class PaymentDeclined extends Error {}

@Injectable()
class OrderService {
  /** A provider method: tracked on the request it is called in. */
  @Track('Order Priced', { properties: ([sku, quantity], price) => ({ sku, quantity, price }) })
  async price(_sku: string, quantity: number): Promise<number> {
    await Promise.resolve();
    return quantity * 10;
  }

  @Track('Stock Checked', { properties: (_args, result) => ({ inStock: result }) })
  inStock(_sku: string): boolean {
    return true;
  }
}

let guardRuns = 0;
@Injectable()
class CountingGuard implements CanActivate {
  canActivate(_context: ExecutionContext): boolean {
    guardRuns++;
    return true;
  }
}

@Controller()
class TrackedController {
  constructor(@Inject(OrderService) private readonly orders: OrderService) {}

  @Get('sync/:plan')
  @Track('Plan Viewed', { properties: ([plan], result) => ({ plan, shown: result.shown }) })
  sync(@Param('plan') plan: string): { shown: string } {
    return { shown: plan.toUpperCase() };
  }

  @Post('async')
  @Track('Checkout Completed', {
    properties: ([dto], order) => ({ items: dto.items, total: order.total }),
  })
  async checkout(@Body() dto: { items: number }): Promise<{ total: number }> {
    const total = await this.orders.price('sku-1', dto.items);
    return { total };
  }

  // @Track above other decorators: their metadata (route, guard) must survive the wrapping.
  @Track('Guarded Viewed')
  @Get('guarded')
  @UseGuards(CountingGuard)
  guarded(): string {
    this.orders.inStock('sku-1');
    return 'ok';
  }

  @Get('throws-sync')
  @Track('Sync Failure', { trackErrors: true })
  throwsSync(): never {
    throw new NotFoundException('user 42 (jane@example.com) not found');
  }

  @Post('throws-async')
  @Track('Payment Submitted', { trackErrors: { event: 'Payment Failed', includeMessage: true } })
  async throwsAsync(): Promise<never> {
    await Promise.resolve();
    throw new PaymentDeclined('card declined');
  }

  @Get('throws-untracked')
  @Track('Never Tracked')
  throwsUntracked(): never {
    throw new Error('boom');
  }

  @Get('observable')
  @Track('Feed Streamed', { properties: (_args, last) => ({ last }) })
  observable(): Observable<number> {
    return of(1, 2, 3);
  }

  @Get('observable-error')
  @Track('Feed Failed Here', { trackErrors: true })
  observableError(): Observable<number> {
    return throwError(() => new PaymentDeclined('no feed'));
  }

  @Get('bad-properties')
  @Track('Bad Properties', {
    properties: () => {
      throw new Error('bug in properties');
    },
  })
  badProperties(): string {
    return 'ok';
  }

  // A properties hook that hands over the request body, as apps do: identity fields in it must not count.
  @Post('search')
  @Track('Searched', { properties: ([body]) => body })
  search(@Body() _body: Record<string, unknown>): string {
    return 'ok';
  }

  @Get('plain')
  plain(): string {
    return 'plain';
  }
}

function appModule(sink: MemorySink, errors: IdstitchError[]) {
  @Module({
    imports: [IdstitchModule.forRoot({ sink, onError: (error) => errors.push(error) })],
    controllers: [TrackedController],
    providers: [OrderService, CountingGuard],
  })
  class AppModule {}
  return AppModule;
}

describe.each(platforms)('@Track() on %s', (platform) => {
  const start = async () => {
    const sink = new MemorySink();
    const errors: IdstitchError[] = [];
    const { server, app } = await boot(appModule(sink, errors), platform);
    return { sink, errors, server, app, props: (i: number) => sink.events[i]!.properties };
  };

  it('tracks a sync handler with properties from its arguments and result', async () => {
    const { sink, server, props } = await start();
    const response = await request(server).get('/sync/pro').expect(200);
    expect(response.body).toEqual({ shown: 'PRO' });
    expect(sink.events.map((event) => event.event)).toEqual(['Plan Viewed']);
    expect(props(0)).toMatchObject({ plan: 'pro', shown: 'PRO' });
    expect(props(0).$device_id).toEqual(expect.any(String));
  });

  it('tracks an async handler after it resolves, with the parsed body, and a provider method inside it', async () => {
    const { sink, server, props } = await start();
    const response = await request(server).post('/async').send({ items: 3 }).expect(201);
    expect(response.body).toEqual({ total: 30 });
    // The provider method resolves first, then the handler.
    expect(sink.events.map((event) => event.event)).toEqual(['Order Priced', 'Checkout Completed']);
    expect(props(0)).toMatchObject({ sku: 'sku-1', quantity: 3, price: 30 });
    expect(props(1)).toMatchObject({ items: 3, total: 30 });
    expect(props(1).$device_id).toBe(props(0).$device_id);
  });

  it('keeps the metadata of decorators below it: route, guard and the handler name', async () => {
    const { sink, server } = await start();
    const before = guardRuns;
    await request(server).get('/guarded').expect(200, 'ok');
    expect(guardRuns).toBe(before + 1);
    expect(sink.events.map((event) => event.event)).toEqual(['Stock Checked', 'Guarded Viewed']);
    expect(TrackedController.prototype.guarded.name).toBe('guarded');
  });

  it('tracks a sync throw as "<event> Failed" with the error class and status, never the message', async () => {
    const { sink, server, props } = await start();
    await request(server).get('/throws-sync').expect(404);
    expect(sink.events.map((event) => event.event)).toEqual(['Sync Failure Failed']);
    expect(props(0)).toMatchObject({ error: 'NotFoundException', error_status: 404 });
    expect(JSON.stringify(props(0))).not.toContain('jane@example.com');
  });

  it('tracks an async rejection under a chosen name, with the message when asked', async () => {
    const { sink, server, props } = await start();
    await request(server).post('/throws-async').expect(500);
    expect(sink.events.map((event) => event.event)).toEqual(['Payment Failed']);
    expect(props(0)).toMatchObject({ error: 'PaymentDeclined', error_message: 'card declined' });
    expect(props(0).error_status).toBeUndefined();
  });

  it('tracks nothing for a failure unless trackErrors is set', async () => {
    const { sink, server } = await start();
    await request(server).get('/throws-untracked').expect(500);
    expect(sink.events).toEqual([]);
  });

  it('tracks an observable once, when it completes, with its last value', async () => {
    const { sink, server, props } = await start();
    await request(server).get('/observable').expect(200, '3');
    expect(sink.events.map((event) => event.event)).toEqual(['Feed Streamed']);
    expect(props(0).last).toBe(3);
  });

  it('tracks an observable’s error as a failure', async () => {
    const { sink, server, props } = await start();
    await request(server).get('/observable-error').expect(500);
    expect(sink.events.map((event) => event.event)).toEqual(['Feed Failed Here Failed']);
    expect(props(0).error).toBe('PaymentDeclined');
  });

  it('tracks without properties and reports when the properties function throws', async () => {
    const { sink, errors, server } = await start();
    await request(server).get('/bad-properties').expect(200, 'ok');
    expect(sink.events.map((event) => event.event)).toEqual(['Bad Properties']);
    expect(errors.map((error) => [error.code, error.message])).toEqual([
      ['hook_failed', "idstitch: @Track('Bad Properties') properties threw; tracked without them"],
    ]);
  });

  it('drops identity fields a properties hook returns (a request body naming a victim)', async () => {
    const { sink, server, props } = await start();
    await request(server)
      .post('/search')
      .send({
        q: 'shoes',
        $user_id: 'victim@example.com',
        distinct_id: 'victim@example.com',
        $insert_id: 'x1',
      })
      .expect(201);
    expect(props(0).q).toBe('shoes');
    expect(props(0).$user_id).toBeUndefined();
    expect(props(0).distinct_id).toBe(`$device:${props(0).$device_id}`);
    expect(props(0).$insert_id).not.toBe('x1');
    expect(sink.events).toHaveLength(1);
  });

  it('leaves undecorated routes alone', async () => {
    const { sink, server } = await start();
    await request(server).get('/plain').expect(200, 'plain');
    expect(sink.events).toEqual([]);
  });
});

describe('@Track() outside Nest’s request pipeline', () => {
  it('writes its metadata for Reflector, only on decorated methods', () => {
    const reflector = new Reflector();
    const meta = reflector.get<TrackMetadata>(TRACK_METADATA, TrackedController.prototype.sync);
    expect(meta.event).toBe('Plan Viewed');
    expect(reflector.get(TRACK_METADATA, TrackedController.prototype.plain)).toBeUndefined();
  });

  it('runs the method untracked outside a request, with the same return value and errors', async () => {
    const service = new OrderService();
    await expect(service.price('sku', 2)).resolves.toBe(20);
    const controller = new TrackedController(service);
    expect(() => controller.throwsSync()).toThrow(NotFoundException);
    await expect(lastValueFrom(controller.observable())).resolves.toBe(3);
  });

  it('refuses a missing event name and a non-method target with idstitch TypeErrors', () => {
    expect(() => Track('')).toThrow(/^idstitch: @Track\(\) needs an event name/);
    const decorator = Track('X');
    expect(() => decorator({}, 'field', { value: 42 })).toThrow(/goes on a method; field is not one/);
  });
});
