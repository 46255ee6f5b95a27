import type { App } from '../overhead/common.js';
import type { Variant } from '../overhead/variants.js';

/** The overhead scenario's apps, built the same way, for the instruction counts. */
export async function buildApp(framework: string, variant: string, ingestPort: number): Promise<App> {
  switch (framework) {
    case 'express':
      return (await import('../overhead/express-app.js')).expressApp(variant as Variant, ingestPort);
    case 'koa':
      return (await import('../overhead/koa-app.js')).koaApp(variant as Variant, ingestPort);
    case 'nest':
      return (await import('../overhead/nest-app.js')).nestApp(variant as Variant, ingestPort);
    case 'fastify':
      return (await import('../overhead/fastify-app.js')).fastifyApp(variant as Variant, ingestPort);
    default:
      throw new Error(`unknown framework ${framework}`);
  }
}
