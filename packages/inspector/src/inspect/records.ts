import { parseNdjson } from '@idstitch/core';
import type { SourceRecords } from './source.js';

/**
 * Builds a {@link SourceRecords} from serialised messages one at a time: a LocalSink line (`{ kind, payload }`)
 * or a bare Mixpanel payload (an event, an `/engage` or `/groups` update), read by core's NDJSON reader so
 * every source accepts exactly what `idstitch report` does. `position` numbers the records from 1.
 */
export class RecordsBuilder {
  readonly records: SourceRecords = {
    messages: [],
    lineNumbers: [],
    unreadable: [],
    origins: [],
    notices: [],
  };
  #position = 0;

  constructor(private readonly label: string) {}

  /** Adds one record; a record that holds no message is listed as unreadable, with `where` in its reason. */
  add(json: string, pending: string | null, where: string): void {
    this.#position += 1;
    // One record per call: a record holding a line break cannot shift the ones after it.
    const parsed = parseNdjson(json.replace(/[\r\n]/g, ' '));
    const message = parsed.messages[0];
    if (message === undefined) {
      const unreadable = parsed.unreadable[0];
      this.records.unreadable.push({
        line: this.#position,
        reason: `${where}: ${unreadable?.reason ?? 'empty record'}`,
        excerpt: json.slice(0, 120),
      });
      return;
    }
    this.records.messages.push(message);
    this.records.lineNumbers.push(this.#position);
    this.records.origins?.push({ sources: [this.label], pending });
  }

  notice(text: string): void {
    this.records.notices?.push(text);
  }
}
