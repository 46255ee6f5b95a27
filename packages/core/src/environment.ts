/**
 * Which environment idstitch runs in, read portably: Node, Bun and Deno have `process.env` (Deno may refuse it
 * without `--allow-env`); Cloudflare's workerd has no environment variables at all (bindings come with each
 * request). Decides one thing: whether a missing cookie secret stops start-up.
 */
import { fail } from './option-checks.js';

/** `'production'` fails closed without a cookie secret; `'development'` signs with a per-process key. */
export type IdstitchEnvironment = 'production' | 'development';

/** The environment and why, for error messages. */
export interface ResolvedEnvironment {
  name: IdstitchEnvironment;
  because: string;
}

/** Reads `NODE_ENV` where the runtime exposes it: `undefined` when unset, `null` when it cannot be read at all. */
function readNodeEnv(): string | undefined | null {
  const scope = globalThis as {
    process?: { env?: Record<string, string | undefined> };
    Deno?: { env?: { get(name: string): string | undefined } };
  };
  try {
    if (scope.process?.env) return scope.process.env.NODE_ENV;
    if (scope.Deno?.env) return scope.Deno.env.get('NODE_ENV');
  } catch {
    // Deno without --allow-env throws: the environment is unknown.
  }
  return null;
}

/** Cloudflare Workers (workerd) answer `navigator.userAgent` with this, with or without `nodejs_compat`. */
const isWorkers = () =>
  (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers';

/**
 * The environment: the `environment` option when given; otherwise `NODE_ENV` (`'production'` or not) where the
 * runtime has one. Where none can be read — workerd, where `process.env` is absent or (with `nodejs_compat`)
 * empty, or Deno without env permission — it is `'production'`: a secret-less start there fails closed unless
 * the app says `environment: 'development'`.
 */
export function resolveEnvironment(explicit: unknown): ResolvedEnvironment {
  if (explicit !== undefined) {
    if (explicit !== 'production' && explicit !== 'development') {
      fail(
        'environment',
        `must be 'production' or 'development', got ${String(explicit)}`,
        "Leave it out to read NODE_ENV, or pass `environment: 'development'` for local development.",
      );
    }
    return { name: explicit, because: `environment is '${explicit}'` };
  }
  const nodeEnv = readNodeEnv();
  if (nodeEnv === null || (nodeEnv === undefined && isWorkers())) {
    return {
      name: 'production',
      because:
        "no NODE_ENV can be read (Cloudflare Workers, Deno without --allow-env), so it counts as production; pass `environment: 'development'` for local development",
    };
  }
  return nodeEnv === 'production'
    ? { name: 'production', because: 'NODE_ENV is "production"' }
    : { name: 'development', because: 'NODE_ENV is not "production"' };
}
