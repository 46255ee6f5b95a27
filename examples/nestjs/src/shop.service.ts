import { InjectTracker, Track, type Tracker } from '@idstitch/nestjs';
import { Injectable } from '@nestjs/common';

/**
 * A singleton service that tracks without ever seeing the request: the injected Tracker is the current
 * request's, through AsyncLocalStorage.
 */
@Injectable()
export class ShopService {
  constructor(@InjectTracker() private readonly tracker: Tracker) {}

  /** Tracked once the (pretend) payment resolves, with properties from the arguments and the result. */
  @Track('Purchase', { properties: ([amount], order) => ({ amount, order_id: order.id }), trackErrors: true })
  async purchase(amount: number): Promise<{ id: string }> {
    if (!(amount > 0)) throw new RangeError('amount must be positive');
    this.tracker.people.increment('purchases');
    return { id: `order-${Date.now().toString(36)}` };
  }
}
