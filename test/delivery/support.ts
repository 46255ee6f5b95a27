import type { MixpanelSink } from '@idstitch/core';
import { expect } from 'vitest';

/** The conservation law at a quiet moment: nothing queued, and every tracked message accounted for. */
export function expectConserved(sink: MixpanelSink): void {
  const stats = sink.stats();
  expect(stats.queued, 'messages still queued').toBe(0);
  expect(stats.tracked, 'tracked = delivered + dropped').toBe(stats.delivered + stats.droppedTotal);
}
