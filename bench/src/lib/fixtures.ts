/** The same event, user IDs and credentials for every SDK, so that payloads compare like for like. */

export const TOKEN = 'benchtoken0123456789abcdef';
export const API_SECRET = 'bench-api-secret-0123456789';
export const COOKIE_SECRET = 'bench-cookie-secret-0123456789';
export const EVENT_NAME = 'Checkout Completed';
export const USERS = 1000;
export const USER_AGENT =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15';

export function userId(i: number): string {
  return `user-${i % USERS}`;
}

/** Ten ordinary properties of a server-side event (what an app adds on top of the SDK's own). */
export function eventProperties(i: number): Record<string, string | number | boolean> {
  return {
    plan: i % 3 === 0 ? 'pro' : 'team',
    amount: 49 + (i % 100) / 100,
    currency: 'EUR',
    items: 1 + (i % 5),
    coupon: i % 7 === 0 ? 'SPRING24' : 'none',
    first_purchase: i % 11 === 0,
    payment_method: 'card',
    order_id: `order-${i}`,
    $pathname: '/checkout/complete',
    $user_agent: USER_AGENT,
  };
}
