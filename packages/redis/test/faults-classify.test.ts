// Whether a failed command may have run: a command Redis received and ran, whose reply was cut off with
// the connection, must be `in_doubt`. With idstitch's connection settings (maxRetriesPerRequest: 0 and a
// retry strategy) ioredis rejects every command that was out on a closing connection with
// "Reached the max retries per request limit": that message does not mean "never sent".
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openRedis } from '../src/connection.js';
import { classifyFailure } from '../src/faults.js';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';

let redis: RedisServer;
let proxy: Server;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  proxy?.close();
  await redis.stop();
});

/**
 * A TCP relay to Redis that, once armed, forwards the next command but not its reply: when the reply
 * comes back it cuts the client's connection instead, as a network failure after Redis ran the command does.
 */
async function cuttingRelay(): Promise<{ port: number; arm: () => void }> {
  let armed = false;
  const clients = new Set<Socket>();
  proxy = createServer((client) => {
    clients.add(client);
    const upstream = createConnection(redis.port, '127.0.0.1');
    client.on('data', (data) => upstream.write(data));
    upstream.on('data', (data) => {
      if (armed) {
        armed = false;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(data);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((ready) => proxy.listen(0, '127.0.0.1', ready));
  return { port: (proxy.address() as { port: number }).port, arm: () => (armed = true) };
}

it('a command that ran but whose reply was lost with the connection is in doubt, not "not run"', async () => {
  const relay = await cuttingRelay();
  const client = openRedis(`redis://127.0.0.1:${relay.port}`, 'classify', 5000);
  client.on('error', () => {});
  await until(() => client.status === 'ready', 'the client to connect');
  relay.arm();
  const error = await client.set('ran', '1').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  // It did run: a retry of a non-idempotent write would apply it twice, and giving it up is not a loss.
  expect(await redis.client.get('ran')).toBe('1');
  expect(classifyFailure(error), (error as Error).message).toBe('in_doubt');
  client.disconnect();
});
