/**
 * A minimal HTTP/1.1 client on one keep-alive socket, in the process under measurement: it writes a prepared
 * request and reads the response far enough to know where it ends (status line, `Content-Length`). It costs the
 * same for every variant, so it cancels out of every difference to bare; what it costs on its own is measured
 * against a server that answers from a raw socket (`client` in the floor table).
 */
import { connect, type Socket } from 'node:net';

export interface LoopbackStats {
  requests: number;
  non200: number;
  /** Responses that carried a `Set-Cookie` header (a new visitor gets one, a returning visitor should not). */
  setCookie: number;
}

export class LoopbackClient {
  readonly stats: LoopbackStats = { requests: 0, non200: 0, setCookie: 0 };
  private socket: Socket | undefined;
  private buffer = '';
  private done: (() => void) | undefined;
  private failed: ((error: Error) => void) | undefined;

  private constructor(
    private readonly port: number,
    private readonly request: string,
  ) {}

  static async open(port: number, headers: Record<string, string>): Promise<LoopbackClient> {
    let request = 'GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\n';
    for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`;
    const client = new LoopbackClient(port, `${request}\r\n`);
    await client.connect();
    return client;
  }

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1', () => resolve());
      socket.setNoDelay(true);
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => this.onData(chunk));
      socket.on('error', (error) => {
        reject(error);
        this.failed?.(error);
      });
      socket.on('close', () => this.failed?.(new Error('the server closed the connection')));
      this.socket = socket;
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buffer.slice(0, end).toLowerCase();
    const at = head.indexOf('content-length:');
    const length = at < 0 ? 0 : Number.parseInt(head.slice(at + 15), 10);
    if (this.buffer.length < end + 4 + length) return;
    this.buffer = this.buffer.slice(end + 4 + length);
    this.stats.requests += 1;
    if (!head.startsWith('http/1.1 200')) this.stats.non200 += 1;
    if (head.includes('\r\nset-cookie:')) this.stats.setCookie += 1;
    const done = this.done;
    this.done = undefined;
    done?.();
  }

  /** One request, answered. */
  send(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.done = resolve;
      this.failed = reject;
      this.socket?.write(this.request);
    });
  }

  /** `count` requests one after the other. */
  async run(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.send();
  }

  close(): void {
    this.failed = undefined;
    this.socket?.destroy();
  }
}
