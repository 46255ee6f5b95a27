import { Child } from '../lib/child.js';

export interface IngestStats {
  requests: number;
  events: number;
  unparsed: number;
  bodyBytes: number;
  bytesIn: number;
  bytesOut: number;
  held: number;
  connections: number;
  byPath: Record<string, { requests: number; events: number }>;
}

/** The loopback ingest server, running in its own process. */
export class Ingest {
  private constructor(
    private readonly child: Child,
    readonly port: number,
  ) {}

  /** `lean`: answer without decoding bodies (see server.ts); events are then not counted here. */
  static async start(
    options: { lean?: boolean; pinned?: boolean; tlsDir?: string; keepAliveMs?: number } = {},
  ): Promise<Ingest> {
    const args = [
      ...(options.lean ? ['--lean'] : []),
      ...(options.keepAliveMs === undefined ? [] : [`--keep-alive-ms=${options.keepAliveMs}`]),
      ...(options.tlsDir ? [`--tls=${options.tlsDir}`] : []),
    ];
    const child = new Child('ingest/server.js', args, [], options.pinned ? 'helper' : undefined);
    const ready = await child.waitFor('ready', 20_000);
    return new Ingest(child, ready.port as number);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stats(): Promise<IngestStats> {
    const { type: _type, ...stats } = await this.child.request({ type: 'stats' }, 'stats', 20_000);
    return stats as unknown as IngestStats;
  }

  async reset(): Promise<void> {
    await this.child.request({ type: 'reset' }, 'reset', 20_000);
  }

  async stall(value: boolean): Promise<void> {
    await this.child.request({ type: 'stall', value }, 'stall', 20_000);
  }

  async close(): Promise<void> {
    this.child.send({ type: 'close' });
    await this.child.exit(5000);
  }
}
