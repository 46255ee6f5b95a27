import { MemorySink } from '@idstitch/core';
import {
  type CanActivate,
  Controller,
  type ExecutionContext,
  Get,
  Headers,
  Inject,
  Injectable,
  Module,
  Req,
} from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import {
  CurrentTracker,
  getTracker,
  IdstitchModule,
  InjectTracker,
  Tracker,
  tryGetTracker,
} from '../src/index.js';
import { boot, platforms } from './helpers.js';

const CONCURRENT = 200;

/** Plays passport: `x-user` becomes `request.user`. */
@Injectable()
class HeaderUserGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: unknown }>();
    if (request.headers['x-user']) request.user = { id: request.headers['x-user'] };
    return true;
  }
}

/** Holds every request until all of them are in flight, so their contexts interleave for sure. */
class Barrier {
  private arrived = 0;
  private release!: () => void;
  readonly open = new Promise<void>((resolve) => {
    this.release = resolve;
  });
  constructor(private readonly size: number) {}
  async wait(): Promise<void> {
    if (++this.arrived === this.size) this.release();
    await this.open;
  }
}

/** A singleton that never sees a request object: only the injected Tracker. */
@Injectable()
class ProfileService {
  barrier = new Barrier(CONCURRENT);

  constructor(@InjectTracker() private readonly tracker: Tracker) {}

  async visit(claimed: string): Promise<{ before: unknown; after: unknown }> {
    this.tracker.track('Profile Opened', { claimed });
    const before = this.tracker.identity.userId;
    await this.barrier.wait();
    await new Promise((resolve) => setImmediate(resolve));
    this.tracker.track('Profile Read', { claimed });
    return { before, after: this.tracker.identity.userId };
  }

  whoOutsideRequest(): unknown {
    return this.tracker.identity;
  }
}

@Controller()
class ProfileController {
  constructor(
    @Inject(ProfileService) private readonly profiles: ProfileService,
    @InjectTracker() private readonly tracker: Tracker,
  ) {}

  @Get('profile')
  profile(@Headers('x-user') user: string) {
    return this.profiles.visit(user);
  }

  @Get('same')
  same(@CurrentTracker() current: Tracker, @Req() req: object) {
    current.track('Via Param');
    getTracker(req).track('Via Request');
    this.tracker.track('Via Injection');
    return {
      inRequest: this.tracker.inRequest && current.inRequest,
      same: getTracker(req) === current && tryGetTracker(req) === current,
      deviceId: current.identity.deviceId,
      injectedDeviceId: this.tracker.identity.deviceId,
    };
  }
}

function appModule(sink: MemorySink) {
  @Module({
    imports: [IdstitchModule.forRoot({ sink })],
    controllers: [ProfileController],
    providers: [ProfileService, { provide: APP_GUARD, useClass: HeaderUserGuard }],
  })
  class AppModule {}
  return AppModule;
}

describe.each(platforms)('the injected Tracker on %s', (platform) => {
  it(`gives a singleton each request's own identity across ${CONCURRENT} interleaved requests`, async () => {
    const sink = new MemorySink();
    const { server } = await boot(appModule(sink), platform);
    const users = Array.from({ length: CONCURRENT }, (_, i) => `user-${i}`);
    const responses = await Promise.all(
      users.map((user) => request(server).get('/profile').set('x-user', user).expect(200)),
    );
    responses.forEach((response, i) => {
      expect(response.body).toEqual({ before: users[i], after: users[i] });
    });
    const tracked = sink.events.filter((event) => event.event.startsWith('Profile'));
    expect(tracked).toHaveLength(CONCURRENT * 2);
    for (const event of tracked) expect(event.properties.$user_id).toBe(event.properties.claimed);
    // Each user got one device, linked once.
    const identified = sink.eventsNamed('Identified');
    expect(new Set(identified.map((event) => event.properties.$user_id)).size).toBe(CONCURRENT);
    expect(new Set(identified.map((event) => event.properties.$device_id)).size).toBe(CONCURRENT);
  });

  it('is the same request tracker through injection, @CurrentTracker() and getTracker(req)', async () => {
    const sink = new MemorySink();
    const { server } = await boot(appModule(sink), platform);
    const { body } = await request(server).get('/same').expect(200);
    expect(body.inRequest).toBe(true);
    expect(body.same).toBe(true);
    expect(body.injectedDeviceId).toBe(body.deviceId);
    expect(sink.events.map((event) => [event.event, event.properties.$device_id])).toEqual([
      ['Via Param', body.deviceId],
      ['Via Request', body.deviceId],
      ['Via Injection', body.deviceId],
    ]);
  });
});

describe('the injected Tracker outside a request', () => {
  async function context() {
    const sink = new MemorySink();
    const app = await NestFactory.createApplicationContext(appModule(sink), { logger: false });
    return { app, sink, tracker: app.get(Tracker), service: app.get(ProfileService) };
  }

  it('throws a clear error that points to forUser()/forDevice()', async () => {
    const { app, tracker, service } = await context();
    expect(tracker.inRequest).toBe(false);
    expect(() => service.whoOutsideRequest()).toThrow(
      /^idstitch: Tracker used outside an HTTP request.*tracker\.forUser\(userId\)/,
    );
    expect(() => tracker.track('x')).toThrow(/outside an HTTP request/);
    await app.close();
  });

  it('tracks for an explicit user or device with forUser()/forDevice(), flushed on close', async () => {
    const { app, tracker, sink } = await context();
    tracker.forUser(42).track('Invoice Sent');
    tracker.forDevice('7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f').track('Push Opened');
    await tracker.flush();
    expect(sink.events.map((event) => [event.event, event.properties.distinct_id])).toEqual([
      ['Invoice Sent', '42'],
      ['Push Opened', '$device:7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f'],
    ]);
    expect(() => tracker.forUser('')).toThrow(/forUser\(\) needs a user ID/);
    await app.close();
  });

  it('getTracker() explains a request idstitch never saw; tryGetTracker() returns undefined', () => {
    expect(tryGetTracker({})).toBeUndefined();
    expect(() => getTracker({})).toThrow(/^idstitch: no tracker for this request\. Import IdstitchModule/);
  });
});
