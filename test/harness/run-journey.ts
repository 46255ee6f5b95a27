import type { MixpanelEvent } from '@idstitch/core';
import request from 'supertest';
import { expect } from 'vitest';
import type { ExpectedEvent, Journey } from '../journeys.js';
import type { RunningApp } from './types.js';

type Agent = ReturnType<typeof request.agent>;

/** Replays a journey over real HTTP, one cookie jar per client. */
export async function replayJourney(app: RunningApp, journey: Journey): Promise<void> {
  const agents = new Map<string, Agent>();
  for (const step of journey.steps) {
    let agent = agents.get(step.client);
    if (!agent) {
      agent = request.agent(app.server);
      agents.set(step.client, agent);
    }
    if ('track' in step) await agent.get(`/track/${encodeURIComponent(step.track)}`).expect(204);
    else if ('login' in step) await agent.post(`/login/${step.login}`).expect(204);
    else if ('logout' in step) await agent.post('/logout').expect(204);
    else await agent.post('/reset').expect(204);
  }
}

/**
 * Asserts the emitted events match the table: same names in the same order, each identity field equal to the
 * ID its symbol stands for, absent fields absent, and distinct symbols standing for distinct IDs.
 */
export function expectJourneyEvents(events: MixpanelEvent[], expected: ExpectedEvent[]): void {
  expect(events.map((event) => event.event)).toEqual(expected.map((row) => row.event));
  const bound = new Map<string, string>();
  const bind = (symbolic: string, actual: unknown, field: string, row: number) => {
    const symbol = symbolic.replace(/^\$device:/, '');
    const prefix = symbolic.startsWith('$device:') ? '$device:' : '';
    expect(typeof actual, `${field} of row ${row + 1}`).toBe('string');
    const value = (actual as string).slice(prefix.length);
    expect((actual as string).startsWith(prefix), `${field} of row ${row + 1} starts with ${prefix}`).toBe(
      true,
    );
    if (/^U\d+$/.test(symbol)) {
      expect(value, `${field} of row ${row + 1}`).toBe(symbol);
      return;
    }
    const previous = bound.get(symbol);
    if (previous === undefined) {
      expect([...bound.values()], `${symbol} is a new device ID`).not.toContain(value);
      bound.set(symbol, value);
    } else {
      expect(value, `${field} of row ${row + 1} is ${symbol}`).toBe(previous);
    }
  };
  expected.forEach((row, i) => {
    const properties = events[i]!.properties as Record<string, unknown>;
    for (const field of ['$device_id', '$user_id', 'distinct_id', '$anon_id', '$identified_id'] as const) {
      const symbolic = row[field];
      if (symbolic === undefined)
        expect(properties[field], `${field} of row ${i + 1} is absent`).toBeUndefined();
      else bind(symbolic, properties[field], field, i);
    }
  });
}
