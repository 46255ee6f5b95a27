import { CurrentTracker, InjectTracker, Track, type Tracker } from '@idstitch/nestjs';
import { Body, Controller, Get, Header, Inject, Post, Redirect, Req } from '@nestjs/common';
import type { ShopRequest } from './session-user.guard.js';
import { ShopService } from './shop.service.js';

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A shop in a few routes: browse anonymously, sign up or log in, buy, log out. idstitch stitches the
 * anonymous browsing to the user on login and resets the device on logout, with no identity code here.
 */
@Controller()
export class ShopController {
  constructor(
    @Inject(ShopService) private readonly shop: ShopService,
    @InjectTracker() private readonly tracker: Tracker,
  ) {}

  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  @Track('Page Viewed', { properties: () => ({ page: 'home' }) })
  home(): string {
    const { deviceId, userId, distinctId } = this.tracker.identity;
    return `<!doctype html><title>idstitch shop</title>
<h1>idstitch example shop (NestJS)</h1>
<p>device <code>${escapeHtml(deviceId ?? '-')}</code> · user <code>${escapeHtml(userId ?? 'anonymous')}</code> · distinct_id <code>${escapeHtml(distinctId ?? '-')}</code></p>
${userId ? '<form method="post" action="/logout"><button>Log out</button></form>' : '<form method="post" action="/login"><input name="userId" placeholder="user id" required><button>Log in</button></form>'}
<form method="post" action="/purchase"><input name="amount" value="19.99"><button>Buy</button></form>`;
  }

  @Get('pricing')
  pricing(@CurrentTracker() tracker: Tracker) {
    tracker.track('Page Viewed', { page: 'pricing' });
    return tracker.identity;
  }

  @Post('signup')
  @Redirect('/', 303)
  signup(@Req() request: ShopRequest, @Body('userId') userId: string): void {
    // A new person on this device: forget the previous visitor's device before linking (Original ID Merge advice).
    this.tracker.reset();
    this.login(request, userId);
    this.tracker.people.setOnce({ signed_up_at: new Date().toISOString() });
  }

  /** What passport's `req.login()` does: the session remembers the user, and `request.user` is set now. */
  @Post('login')
  @Redirect('/', 303)
  login(@Req() request: ShopRequest, @Body('userId') userId: string): void {
    request.session.userId = String(userId ?? '');
    request.user = { id: request.session.userId };
  }

  @Post('logout')
  @Redirect('/', 303)
  logout(@Req() request: ShopRequest): void {
    delete request.session.userId;
    request.user = undefined;
  }

  @Post('purchase')
  @Redirect('/', 303)
  async purchase(@Body('amount') amount: string): Promise<void> {
    await this.shop.purchase(Number(amount ?? 0));
  }

  @Get('identity')
  identity() {
    return this.tracker.identity;
  }
}
