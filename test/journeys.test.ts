import { afterEach, describe, it } from 'vitest';
import { harnesses } from './harness/index.js';
import { expectJourneyEvents, replayJourney } from './harness/run-journey.js';
import type { RunningApp } from './harness/types.js';
import { journeys } from './journeys.js';

describe.each(harnesses)('ID Merge journeys through $name', (harness) => {
  let app: RunningApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it.each(journeys)('$name', async (journey) => {
    app = await harness.start({
      idMerge: journey.idMerge,
      ...(journey.resetOnLogout === undefined ? {} : { resetOnLogout: journey.resetOnLogout }),
    });
    await replayJourney(app, journey);
    expectJourneyEvents(app.sink.events, journey.expected);
  });
});
