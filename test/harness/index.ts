import { expressHarness } from './express.js';
import { fastifyHarness } from './fastify.js';
import { koaHarness } from './koa.js';
import { nestExpressHarness } from './nest-express.js';
import { nestFastifyHarness } from './nest-fastify.js';
import type { AdapterHarness } from './types.js';

/** Every adapter the shared journey and behaviour tests run against. */
export const harnesses: AdapterHarness[] = [
  expressHarness,
  koaHarness,
  fastifyHarness,
  nestExpressHarness,
  nestFastifyHarness,
];
