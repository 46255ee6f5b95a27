import { createIdstitch, type Idstitch, type IdstitchOptions } from '@idstitch/core';
import {
  type DynamicModule,
  Inject,
  type InjectionToken,
  type MiddlewareConsumer,
  Module,
  type ModuleMetadata,
  type NestModule,
  type OnApplicationShutdown,
  type OptionalFactoryDependency,
  type Provider,
  type Type,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { mountIdstitch } from './platforms.js';
import type { IdstitchRequest } from './request-context.js';
import { Tracker } from './tracker.provider.js';

/** Injection token of the engine (`Idstitch`): `@Inject(IDSTITCH) idstitch: Idstitch`. */
export const IDSTITCH = 'idstitch:engine';
/** Injection token of the options the engine was made from. */
export const IDSTITCH_OPTIONS = 'idstitch:options';

/** `request.user?.id`, as passport's `AuthGuard` (or your own guard) sets it. */
export function defaultResolveUserId(request: IdstitchRequest): unknown {
  return request.user?.id;
}

/**
 * Options of {@link IdstitchModule.forRoot}: every idstitch option (`resolveUserId` receives Express's `req` or
 * Fastify's `request`), plus how the module registers.
 */
export interface IdstitchModuleOptions<Req extends IdstitchRequest = IdstitchRequest>
  extends IdstitchOptions<Req> {
  /** Make `Tracker` injectable in every module without importing this one. Default `true`. */
  global?: boolean;
}

/** A class that makes the options, for `forRootAsync({ useClass })` / `({ useExisting })`. */
export interface IdstitchOptionsFactory<Req extends IdstitchRequest = IdstitchRequest> {
  createIdstitchOptions(): IdstitchOptions<Req> | Promise<IdstitchOptions<Req>>;
}

/** Options of {@link IdstitchModule.forRootAsync}: give exactly one of `useFactory`, `useClass`, `useExisting`. */
export interface IdstitchModuleAsyncOptions<Req extends IdstitchRequest = IdstitchRequest>
  extends Pick<ModuleMetadata, 'imports'> {
  /** Make `Tracker` injectable in every module without importing this one. Default `true`. */
  global?: boolean;
  /** Makes the options from the providers in `inject`, e.g. `(config: ConfigService) => ({ ... })`. */
  useFactory?: (...args: never[]) => IdstitchOptions<Req> | Promise<IdstitchOptions<Req>>;
  /** Providers handed to `useFactory`, in order. */
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  /** A class this module instantiates to make the options. */
  useClass?: Type<IdstitchOptionsFactory<Req>>;
  /** A provider, registered elsewhere, that makes the options. */
  useExisting?: Type<IdstitchOptionsFactory<Req>>;
}

function optionsProviders(options: IdstitchModuleAsyncOptions<IdstitchRequest>): Provider[] {
  const given = [options.useFactory, options.useClass, options.useExisting].filter(Boolean).length;
  if (given !== 1) {
    throw new TypeError(
      'idstitch: IdstitchModule.forRootAsync() needs exactly one of `useFactory`, `useClass` or `useExisting`, ' +
        'e.g. `{ imports: [ConfigModule], inject: [ConfigService], useFactory: (config) => ({ ... }) }`.',
    );
  }
  if (options.useFactory) {
    return [
      {
        provide: IDSTITCH_OPTIONS,
        useFactory: options.useFactory as (...args: unknown[]) => IdstitchOptions<IdstitchRequest>,
        inject: options.inject ?? [],
      },
    ];
  }
  const factory = (options.useClass ?? options.useExisting) as Type<IdstitchOptionsFactory>;
  return [
    {
      provide: IDSTITCH_OPTIONS,
      useFactory: (made: IdstitchOptionsFactory) => made.createIdstitchOptions(),
      inject: [factory],
    },
    ...(options.useClass ? [{ provide: factory, useClass: factory }] : []),
  ];
}

const engineProviders: Provider[] = [
  {
    provide: IDSTITCH,
    useFactory: (options: IdstitchOptions<IdstitchRequest> | undefined) =>
      createIdstitch(options, { resolveUserId: defaultResolveUserId }),
    inject: [IDSTITCH_OPTIONS],
  },
  {
    provide: Tracker,
    useFactory: (engine: Idstitch<IdstitchRequest>) => new Tracker(engine),
    inject: [IDSTITCH],
  },
];

/**
 * `IdstitchModule.forRoot(options)` in your root module gives every request a tracker that knows the visitor:
 * it mounts itself on Express or Fastify (no `app.use`), makes `Tracker` injectable everywhere, and flushes the
 * sink on `app.close()`.
 */
@Module({})
export class IdstitchModule implements NestModule, OnApplicationShutdown {
  constructor(
    @Inject(IDSTITCH) private readonly engine: Idstitch<IdstitchRequest>,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  static forRoot<Req extends IdstitchRequest = IdstitchRequest>(
    options: IdstitchModuleOptions<Req> = {},
  ): DynamicModule {
    const { global = true, ...idstitchOptions } = options;
    return {
      module: IdstitchModule,
      global,
      providers: [{ provide: IDSTITCH_OPTIONS, useValue: idstitchOptions }, ...engineProviders],
      exports: [IDSTITCH, Tracker],
    };
  }

  static forRootAsync<Req extends IdstitchRequest = IdstitchRequest>(
    options: IdstitchModuleAsyncOptions<Req>,
  ): DynamicModule {
    return {
      module: IdstitchModule,
      global: options.global ?? true,
      imports: options.imports ?? [],
      providers: [
        ...optionsProviders(options as unknown as IdstitchModuleAsyncOptions<IdstitchRequest>),
        ...engineProviders,
      ],
      exports: [IDSTITCH, Tracker],
    };
  }

  /** Runs while Nest registers middleware, before the router: the hook sees every request. */
  configure(_consumer: MiddlewareConsumer): void {
    mountIdstitch(this.adapterHost.httpAdapter, this.engine);
  }

  /** `app.close()`: hands on everything tracked, flushes and closes the sink. */
  async onApplicationShutdown(): Promise<void> {
    await this.engine.close();
  }
}
