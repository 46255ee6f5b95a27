import { MixpanelSink } from '@idstitch/core/web';

/** What the example reads from its environment (variables on Node, Bun and Deno; bindings on Workers). */
export interface ExampleEnv {
  /** A Mixpanel project token: events go to Mixpanel. Without one, each runtime's entry picks a local sink. */
  MIXPANEL_TOKEN?: string;
  /** Mixpanel's API host (`eu`, `in` or a base URL such as a proxy); default Mixpanel's US host. */
  MIXPANEL_HOST?: string;
  /** Signs the device cookie (and the example's session cookie). Required in production. */
  IDSTITCH_COOKIE_SECRET?: string;
  /** `development` lets a Worker start without a secret (a per-isolate key signs); see `environment`. */
  IDSTITCH_ENVIRONMENT?: string;
}

/** A `MixpanelSink` when the environment names a project token, otherwise undefined. */
export function mixpanelSink(env: ExampleEnv): MixpanelSink | undefined {
  if (!env.MIXPANEL_TOKEN) return undefined;
  return new MixpanelSink({
    token: env.MIXPANEL_TOKEN,
    ...(env.MIXPANEL_HOST ? { host: env.MIXPANEL_HOST } : {}),
  });
}

/** `IDSTITCH_ENVIRONMENT` as idstitch's `environment` option, when it is one. */
export function environment(env: ExampleEnv): { environment?: 'production' | 'development' } {
  const name = env.IDSTITCH_ENVIRONMENT;
  return name === 'production' || name === 'development' ? { environment: name } : {};
}
