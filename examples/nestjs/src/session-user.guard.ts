import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';

declare module 'express-session' {
  interface SessionData {
    userId?: string;
  }
}

/** The signed-in user, as passport would put it on the request. */
export interface ShopUser {
  id: string;
}

export type ShopRequest = Request & { user?: ShopUser };

/**
 * What passport's `session()` does, in a few lines: the session's user becomes `request.user` before handlers
 * run. idstitch's default resolver reads `request.user.id`.
 */
@Injectable()
export class SessionUserGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<ShopRequest>();
    const userId = request.session?.userId;
    request.user = userId ? { id: userId } : undefined;
    return true;
  }
}
