import { describe, expect, it } from 'vitest';
import {
  addCosts,
  CATEGORIES,
  caseBreakdown,
  categorize,
  type DumpCosts,
  emptyCosts,
  JIT_NAME,
  parseSelfCosts,
  qualifiedName,
} from '../src/instructions/breakdown.js';
import { addedFunctions } from '../src/instructions/report.js';
import { instrumentRequest } from '../src/instructions/run.js';

/** A per-dump file as callgrind 3.19 writes one with `--compress-strings=yes --dump-line=no`. */
const DUMP = [
  '# callgrind format',
  'version: 1',
  'part: 3',
  'thread: 1',
  'positions: line',
  'events: Ir',
  'summary: 1111',
  '',
  'ob=(1) /usr/bin/node',
  'fl=(1) ???',
  'fn=(1) Builtins_LoadIC',
  '0 100',
  'cfn=(2) v8::internal::Runtime_LoadIC_Miss(int, unsigned long*, v8::internal::Isolate*)',
  'calls=1 0 ',
  '0 500',
  '',
  'fn=(2)',
  '0 200',
  'cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6',
  'cfn=(3) malloc',
  'calls=2 0 ',
  '0 300',
  '',
  'ob=(2)',
  'fn=(3)',
  '0 300',
  '',
  'ob=(3) ???',
  'fn=(4) 0x0000000012345678',
  '0 10',
  'fn=(5) 0x0000000087654321',
  '0 1',
  '+2 0',
  '',
  'ob=(1)',
  'fn=(6) heap::base::SlotCallbackResult v8::internal::Scavenger::EvacuateObject<v8::internal::FullHeapObjectSlot>(v8::internal::Map)',
  '0 400',
  '* 100',
  '',
  'totals: 1111',
].join('\n');

describe('parseSelfCosts', () => {
  it('sums self costs by category and function, skipping the inclusive cost after calls=', () => {
    const costs = parseSelfCosts(DUMP);
    const total = CATEGORIES.reduce((sum, category) => sum + costs.byCategory[category], 0);
    expect(total).toBe(1111);
    expect(costs.byCategory.ic).toBe(100);
    expect(costs.byCategory.runtime).toBe(200);
    expect(costs.byCategory.libc).toBe(300);
    expect(costs.byCategory.jit).toBe(11);
    expect(costs.byCategory.gc).toBe(500);
    expect(costs.byFunction.get('v8::internal::Runtime_LoadIC_Miss')).toBe(200);
    // Every function without a symbol in an unnamed object is one entry.
    expect(costs.byFunction.get(JIT_NAME)).toBe(11);
    expect(costs.byFunction.get('v8::internal::Scavenger::EvacuateObject')).toBe(500);
  });
});

describe('qualifiedName and categorize', () => {
  it('drops return type, template arguments and parameters', () => {
    expect(
      qualifiedName(
        'int v8::internal::Deserializer<v8::internal::Isolate>::ReadSingleBytecodeData<v8::internal::SlotAccessorForHeapObject>(unsigned char, int)',
      ),
    ).toBe('v8::internal::Deserializer::ReadSingleBytecodeData');
    expect(
      qualifiedName(
        'void node::Buffer::(anonymous namespace)::StringWrite<(node::encoding)1>(v8::Value const&)',
      ),
    ).toBe('node::Buffer::{anon}::StringWrite');
    expect(qualifiedName("Builtins_LoadIC'2")).toBe('Builtins_LoadIC');
    expect(qualifiedName('operator new(unsigned long)')).toBe('operator new');
  });

  it('puts each kind of function where the tables say', () => {
    const node = '/usr/bin/node';
    expect(categorize('0x00000000000a58e0', '???')).toBe('jit');
    // A stripped function of a named object is not JIT code.
    expect(categorize('0x00000000000a58e0', node)).toBe('other');
    expect(categorize('Builtins_KeyedLoadIC_Megamorphic', node)).toBe('ic');
    expect(categorize('Builtins_DefineNamedOwnICBaseline', node)).toBe('ic');
    expect(categorize('Builtins_LdaNamedPropertyHandler', node)).toBe('interpreter');
    expect(categorize('Builtins_InterpreterEntryTrampoline', node)).toBe('interpreter');
    expect(categorize('Builtins_StringAdd_CheckNone', node)).toBe('builtins');
    expect(categorize('Builtins_JsonStringify', node)).toBe('json');
    expect(
      categorize(
        'v8::internal::JsonStringifier::SerializeString(v8::internal::Handle<v8::internal::String>)',
        node,
      ),
    ).toBe('json');
    expect(categorize('v8::internal::LookupIterator::Start<false>()', node)).toBe('runtime');
    // A type named in a template argument does not make a function GC's.
    expect(
      categorize(
        'int v8::internal::Deserializer<v8::internal::Isolate>::ReadData<v8::internal::SlotAccessorForHeapObject>(int)',
        node,
      ),
    ).toBe('runtime');
    expect(categorize('v8::internal::Factory::NewHeapNumber()', node)).toBe('runtime');
    expect(categorize('v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)', node)).toBe('gc');
    expect(
      categorize(
        'void v8::internal::BodyDescriptorBase::IteratePointers<v8::internal::IterateAndScavengePromotedObjectsVisitor>(int)',
        node,
      ),
    ).toBe('gc');
    expect(categorize('sha256_block_data_order_avx2', node)).toBe('crypto');
    expect(categorize('EVP_DigestUpdate', node)).toBe('crypto');
    expect(categorize('Cr_z_deflate', node)).toBe('zlib');
    expect(categorize('longest_match', node)).toBe('zlib');
    expect(categorize('uv__io_poll', node)).toBe('libuv');
    expect(categorize('node::StringBytes::Encode(v8::Isolate*, char const*)', node)).toBe('node');
    expect(categorize('anything', '/usr/lib/x86_64-linux-gnu/libc.so.6')).toBe('libc');
    expect(categorize('malloc', node)).toBe('libc');
  });
});

function costs(values: Partial<Record<'gc' | 'jit', number>>, functions: Record<string, number>): DumpCosts {
  const byCategory = { ...emptyCosts(), ...values };
  return {
    byCategory,
    byFunction: new Map(Object.entries(functions)),
    categoryOf: new Map(Object.keys(functions).map((name) => [name, 'runtime' as const])),
  };
}

describe('caseBreakdown', () => {
  it('takes (2n − n) / n per pair and the median of the pairs, per category and function', () => {
    const phases = [
      costs({ gc: 1000, jit: 100 }, { f: 100 }),
      costs({ gc: 1200, jit: 300 }, { f: 300 }),
      costs({ gc: 1000, jit: 100 }, { f: 100 }),
      costs({ gc: 1900, jit: 300 }, { f: 400 }),
      costs({ gc: 1000, jit: 100 }, { f: 100 }),
      costs({ gc: 1400, jit: 300 }, { f: 300 }),
    ];
    const breakdown = caseBreakdown(phases, 100, 3);
    expect(breakdown.categories.gc).toBe(4);
    expect(breakdown.categories.jit).toBe(2);
    expect(breakdown.functions).toEqual([['f', 'runtime', 2]]);
    expect(() => caseBreakdown(phases.slice(1), 100, 3)).toThrow(/expected 6/);
  });

  it('adds the pool thread to the main thread', () => {
    const sum = addCosts(costs({ gc: 1 }, { f: 1 }), costs({ gc: 2 }, { f: 2, g: 5 }));
    expect(sum.byCategory.gc).toBe(3);
    expect(Object.fromEntries(sum.byFunction)).toEqual({ f: 3, g: 5 });
  });

  it('reads what a variant adds per function against bare, missing functions as 0', () => {
    const mine = {
      categories: emptyCosts(),
      functions: [
        ['a', 'ic', 50],
        ['b', 'gc', 10],
      ] as Array<[string, 'ic' | 'gc', number]>,
    };
    const bare = {
      categories: emptyCosts(),
      functions: [
        ['b', 'gc', 30],
        ['c', 'runtime', 5],
      ] as Array<[string, 'gc' | 'runtime', number]>,
    };
    expect(addedFunctions(mine, bare)).toEqual([
      { name: 'a', category: 'ic', added: 50 },
      { name: 'c', category: 'runtime', added: -5 },
      { name: 'b', category: 'gc', added: -20 },
    ]);
  });
});

describe('instrumentRequest', () => {
  it("reads the target's requests to switch instrumentation and nothing else", () => {
    expect(instrumentRequest('{"type":"instrument","on":true}')).toBe('on');
    expect(instrumentRequest('{"type":"instrument","on":false}')).toBe('off');
    expect(instrumentRequest('{"type":"report","reports":[]}')).toBeUndefined();
    expect(instrumentRequest('phase 200: 3 ms')).toBeUndefined();
  });
});
