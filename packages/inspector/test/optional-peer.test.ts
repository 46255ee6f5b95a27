import { IdstitchOptionsError } from '@idstitch/core';
import { describe, expect, it } from 'vitest';
import { importOptional } from '../src/inspect/redis-source.js';

describe('the Redis source without its optional peer dependencies', () => {
  it('says which packages to install when one is missing', async () => {
    const failure = importOptional('@idstitch/not-installed-here');
    await expect(failure).rejects.toBeInstanceOf(IdstitchOptionsError);
    await expect(failure).rejects.toThrow(
      /needs the @idstitch\/not-installed-here package.*npm install @idstitch\/redis ioredis/,
    );
  });

  it('loads them when installed', async () => {
    await expect(importOptional<{ Redis: unknown }>('ioredis')).resolves.toHaveProperty('Redis');
  });
});
