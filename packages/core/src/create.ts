import { Idstitch } from './idstitch.js';
import { LocalSink } from './local/local-sink.js';
import type { AdapterDefaults, EngineDefaults, IdstitchOptions } from './options.js';

/**
 * The Node defaults, picked here at the composition root: with no `sink`, messages are recorded to a LocalSink
 * (`.idstitch/events.ndjson`) in the configured ID Merge mode, ready for `idstitch report`/`inspect`.
 */
const NODE_DEFAULTS: EngineDefaults = {
  sink: (idMerge) => new LocalSink({ mode: idMerge }),
};

/** Creates the engine; adapters call this with their framework's defaults. */
export function createIdstitch<Req>(
  options: IdstitchOptions<Req> | undefined,
  defaults: AdapterDefaults<Req>,
): Idstitch<Req> {
  return new Idstitch(options, defaults, NODE_DEFAULTS);
}
