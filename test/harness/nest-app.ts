import type { Server } from 'node:http';
import type { IdstitchOptions } from '@idstitch/core';
import { MemorySink } from '@idstitch/core';
import { CurrentTracker, IdstitchModule, InjectTracker, type Tracker } from '@idstitch/nestjs';
import {
  Body,
  type CanActivate,
  Controller,
  type ExecutionContext,
  Get,
  HttpCode,
  type INestApplication,
  Injectable,
  Module,
  Param,
  Post,
  Req,
  type Type,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { RunningApp } from './types.js';

/** A session as both platforms' session plugins expose it: `userId` is a plain property. */
interface SessionRequest {
  session?: { userId?: string } | null;
  user?: { id: string } | undefined;
}

/** Does what passport's `session()` does: the session's user becomes `request.user` before handlers run. */
@Injectable()
class SessionUserGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<SessionRequest>();
    const userId = request.session?.userId;
    request.user = userId ? { id: userId } : undefined;
    return true;
  }
}

/** The harness routes (see types.ts). Login and logout change `request.user` as passport's login/logout do. */
@Controller()
class HarnessController {
  constructor(@InjectTracker() private readonly tracker: Tracker) {}

  @Get('track/:event')
  @HttpCode(204)
  track(@Param('event') event: string): void {
    this.tracker.track(event);
  }

  @Post('track-body/:event')
  @HttpCode(204)
  trackBody(@Param('event') event: string, @Body() body: Record<string, unknown>): void {
    this.tracker.track(event, body);
  }

  @Post('login/:user')
  @HttpCode(204)
  login(@Param('user') user: string, @Req() request: SessionRequest): void {
    request.session!.userId = user;
    request.user = { id: user };
  }

  @Post('logout')
  @HttpCode(204)
  logout(@Req() request: SessionRequest): void {
    delete request.session!.userId;
    request.user = undefined;
  }

  @Post('reset')
  @HttpCode(204)
  reset(@CurrentTracker() tracker: Tracker): void {
    tracker.reset();
  }

  @Get('whoami')
  whoami(@CurrentTracker() tracker: Tracker): unknown {
    return tracker.identity;
  }
}

/** The root module of a Nest harness app, with idstitch options for one journey. */
export function harnessModule(sink: MemorySink, options: IdstitchOptions<never>): Type {
  @Module({
    imports: [
      IdstitchModule.forRoot({
        sink,
        cookie: { secret: 'a-test-secret-of-32-characters!!' },
        ...(options as object),
      }),
    ],
    controllers: [HarnessController],
    providers: [{ provide: APP_GUARD, useClass: SessionUserGuard }],
  })
  class HarnessModule {}
  return HarnessModule;
}

export async function listen(app: INestApplication, sink: MemorySink): Promise<RunningApp> {
  await app.listen(0, '127.0.0.1');
  return { server: app.getHttpServer() as Server, sink, close: () => app.close() };
}

export { MemorySink };
