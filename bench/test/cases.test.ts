import { describe, expect, it } from 'vitest';
import { caseKey, instructionCases } from '../src/instructions/run.js';

const apps = (frameworks: Parameters<typeof instructionCases>[0], quick: boolean) =>
  instructionCases(frameworks, quick)
    .filter((c) => c.kind === 'app')
    .map(caseKey);

describe('instructionCases', () => {
  it("keeps in the full run what issue 12's targets and the peers' comparison need", () => {
    expect(apps(['express', 'koa', 'nest'], false)).toEqual([
      'express/bare/returning',
      'express/idstitch/returning',
      'express/idstitch/new',
      'express/handwritten/returning',
      'express/posthog/returning',
      'express/segment/returning',
      'koa/bare/returning',
      'koa/idstitch/returning',
      'koa/idstitch/new',
      'koa/handwritten/returning',
      'nest/bare/returning',
      'nest/idstitch/returning',
      'nest/idstitch/new',
      'nest/handwritten/returning',
    ]);
  });

  it('keeps the quick run to the hand-written recipe on Express, and Fastify only when asked for', () => {
    expect(apps(['express', 'koa', 'nest', 'fastify'], true)).toHaveLength(10);
    expect(apps(['fastify'], false)).toEqual([
      'fastify/bare/returning',
      'fastify/idstitch/returning',
      'fastify/idstitch/new',
    ]);
    // The client and the floor parts are in every run.
    expect(instructionCases([], true).map(caseKey)).toContain('client');
  });
});
