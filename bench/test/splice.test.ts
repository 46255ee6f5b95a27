import { describe, expect, it } from 'vitest';
import { mergeTargets, replaceSection } from '../src/instructions/splice.js';

const results = [
  '# title',
  '',
  '## Targets',
  '',
  '| old |',
  '',
  '## Machine and run',
  '',
  '- machine',
  '',
  '## 1. Request overhead',
  '',
  'overhead table',
  '',
].join('\n');

describe('replacing the instruction section of a previous RESULTS.md', () => {
  it('inserts a missing section before the one named, keeping everything else', () => {
    const out = replaceSection(results, /^## 0\. /, '## 0. Instructions\n\nnew table', /^## 1\. /);
    expect(out).toBe(
      results.replace('## 1. Request overhead', '## 0. Instructions\n\nnew table\n\n## 1. Request overhead'),
    );
  });

  it('replaces a section up to the next heading of its level, its sub-headings included', () => {
    const once = replaceSection(results, /^## 0\. /, '## 0. Instructions\n\n### floor\n\nA', /^## 1\. /);
    const twice = replaceSection(once, /^## 0\. /, '## 0. Instructions\n\nB', /^## 1\. /);
    expect(twice).toBe(
      results.replace('## 1. Request overhead', '## 0. Instructions\n\nB\n\n## 1. Request overhead'),
    );
    const targets = replaceSection(twice, /^## Targets$/, '## Targets\n\n| new |', /^## Machine/);
    expect(targets).toContain('## Targets\n\n| new |\n\n## Machine and run');
    expect(targets).not.toContain('| old |');
  });

  it('takes the fresh instruction targets and the previous run’s other targets', () => {
    const previous = [
      { id: 'instructions-express-returning', v: 'old' },
      { id: 'overhead-express', v: 'old' },
    ];
    const fresh = [
      { id: 'instructions-express-returning', v: 'new' },
      { id: 'overhead-express', v: 'not run' },
    ];
    expect(mergeTargets(previous, fresh)).toEqual([
      { id: 'instructions-express-returning', v: 'new' },
      { id: 'overhead-express', v: 'old' },
    ]);
  });
});
