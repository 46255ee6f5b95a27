/**
 * Where a request's instructions go, by category, from the same callgrind dumps as the counts (no extra run).
 * Each per-dump file lists every function's self cost; callgrind names V8's builtins (`Builtins_LoadIC`…), its
 * C++ runtime (`v8::internal::…`), OpenSSL, zlib, libuv and node's own C++, but not JavaScript compiled at run
 * time (TurboFan and Maglev code has no symbol: it shows as an address in an unnamed object). idstitch's own
 * JavaScript therefore cannot be told apart from the framework's: it is in "JavaScript (optimised, JIT code)",
 * "interpreter and baseline" and the property-access rows, and a case's share of them is read against bare's.
 *
 * A case's figure per category is taken like its count (pairs.ts): per pair, (category's instructions in the 2n
 * phase − in the n phase) / n, main thread plus pool thread, and the median of the pairs.
 */

import { readFileSync } from 'node:fs';
import { median } from '../lib/stats.js';

/** The categories, in table order; the first rule that matches a function decides. */
export const CATEGORIES = [
  'gc',
  'json',
  'crypto',
  'zlib',
  'ic',
  'runtime',
  'interpreter',
  'builtins',
  'jit',
  'libuv',
  'node',
  'libc',
  'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

export const CATEGORY_LABELS: Record<Category, string> = {
  gc: 'GC (scavenges, marking, sweeping, the full GC at phase end)',
  json: '`JSON.stringify` / `JSON.parse`',
  crypto: 'crypto (OpenSSL: HMAC, SHA-256, random UUIDs)',
  zlib: 'zlib (gzip of the batches, on the pool thread)',
  ic: 'V8 property-access builtins (`LoadIC`, `KeyedLoadIC_Megamorphic`, `DefineNamedOwnIC`…)',
  runtime:
    'V8 runtime and API in C++ (IC misses, `LookupIterator`, map transitions, calls between node and V8)',
  interpreter: 'interpreter and baseline code (JavaScript not yet optimised)',
  builtins: 'other V8 builtins (object and array literals, strings, calls, promises)',
  jit: 'JavaScript, optimised (TurboFan/Maglev code, no symbol: idstitch, the framework, node)',
  libuv: 'libuv (event loop, sockets, pool)',
  node: "node's C++ (bindings, http parser, streams)",
  libc: 'libc, libstdc++, kernel entry',
  other: 'other',
};

const GC_CLASS =
  /^(?:v8::internal::|heap::|cppgc::)(?:\w+::)*?(?:Heap|HeapAllocator|MainAllocator|\w*Scaveng\w*|\w*MarkCompact\w*|\w*Marking\w*|\w*Sweep\w*|\w*Evacuat\w*|RememberedSet\w*|\w*SlotSet|GlobalHandles|MemoryChunk\w*|PagedSpace\w*|NewSpace|\w*SemiSpace\w*|\w*LargeObjectSpace|MemoryAllocator|GCTracer|MemoryReducer|LocalHeap|Safepoint\w*|PretenuringHandler|FreeList\w*|Page|WeakObjects|EphemeronHashTable)::/;
const GC_VISITOR = /(?:Scaveng|Marking|Evacuat|Sweep|Compact)\w*Visitor|^heap::base::|^cppgc::/;
const JSON_FN = /Json|JSON/;
const CRYPTO =
  /^(?:EVP_|evp_|inner_evp|HMAC|SHA\d|ossl_|OSSL_|OPENSSL_|CRYPTO_|RAND_|BN_|ERR_|aesni_|OBJ_|ASN1_|asn1_|X509_|x509_|ENGINE_|node::crypto::)|_block_data_order|^sha\d|keccak/;
const ZLIB =
  /^(?:Cr_z_|z_|deflate|inflate|longest_match|fill_window|compress_block|send_tree|build_tree|gen_bitlen|gen_codes|pqdownheap|scan_tree|_tr_|crc32|adler32|zcalloc|zcfree|updatewindow)|^node::(?:\{anon\}::)?\w*Zlib/;
const IC = /^Builtins_\w*(?:IC|ICBaseline|IC_\w+|Megamorphic\w*|Monomorphic\w*|Polymorphic\w*)$/;
const INTERPRETER =
  /^Builtins_(?:\w+Handler|Interpreter\w*|\w*Baseline\w*)$|^v8::internal::interpreter::|^v8::internal::baseline::/;
const LIBUV = /^uv_|^uv__/;
const NODE = /^node::|^llhttp|^ada::|^napi_|^simdutf::|^nghttp2|^cares|^ares_/;
const LIBC_OB = /\/(?:libc|libm|libstdc\+\+|libgcc_s|libpthread|ld-linux|libdl)[.-]/;
const LIBC_FN =
  /^(?:__|mem|str|malloc|free|calloc|realloc|_int_|pthread_|epoll|read|write|syscall|clock_gettime|operator new|operator delete)/;

/**
 * A C++ symbol as callgrind prints it, reduced to its qualified name: no return type, no parameters, no template
 * arguments (`int v8::internal::Deserializer<…>::ReadSingleBytecodeData<…>(…)` → `v8::internal::Deserializer::
 * ReadSingleBytecodeData`), so that a type named in a template argument does not decide the category.
 */
export function qualifiedName(symbol: string): string {
  const text = symbol.replace(/\(anonymous namespace\)/g, '{anon}').replace(/'\d+$/, '');
  let depth = 0;
  let start = 0;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (char === '<') depth++;
    else if (char === '>') depth = Math.max(0, depth - 1);
    else if (depth === 0 && char === '(') break;
    else if (depth === 0 && char === ' ') {
      // A space outside template arguments ends the return type (or `operator new`'s first word).
      if (!/operator$/.test(out)) {
        start = i + 1;
        out = '';
        continue;
      }
    }
    if (depth === 0 && char !== '>') out += char;
  }
  return start === 0 && out === '' ? text : out;
}

/** The category of one function, from its name and the object file it lives in. */
export function categorize(fn: string, ob: string): Category {
  if (/^0x[0-9a-f]+$/i.test(fn) && (ob === '???' || ob === '')) return 'jit';
  if (LIBC_OB.test(ob)) return 'libc';
  const name = qualifiedName(fn);
  if (GC_CLASS.test(name) || GC_VISITOR.test(fn)) return 'gc';
  if (JSON_FN.test(name)) return 'json';
  if (CRYPTO.test(name)) return 'crypto';
  if (ZLIB.test(name)) return 'zlib';
  if (IC.test(name)) return 'ic';
  if (INTERPRETER.test(name)) return 'interpreter';
  if (/^Builtins_/.test(name)) return 'builtins';
  if (/^v8::|^v8_|^Runtime_/.test(name)) return 'runtime';
  if (LIBUV.test(name)) return 'libuv';
  if (NODE.test(name)) return 'node';
  if (LIBC_FN.test(name)) return 'libc';
  return 'other';
}

/** Self cost (`Ir`) per category in one callgrind out file, and per function (name → cost). */
export interface DumpCosts {
  byCategory: Record<Category, number>;
  /** Keyed by {@link qualifiedName}; all JIT code (no symbol) is one entry, {@link JIT_NAME}. */
  byFunction: Map<string, number>;
  categoryOf: Map<string, Category>;
}

/** The one name of every function without a symbol in an unnamed object: code V8 compiled at run time. */
export const JIT_NAME = '(JavaScript compiled at run time)';

export function emptyCosts(): Record<Category, number> {
  return Object.fromEntries(CATEGORIES.map((category) => [category, 0])) as Record<Category, number>;
}

/**
 * Reads a callgrind out file's self costs. Names may be compressed (`fn=(12) name` defines id 12, `fn=(12)`
 * refers to it; `cfn=`/`cob=` define ids too). A cost line right after `calls=` is the inclusive cost of that
 * call, not the function's own, and is skipped. Only the last number of a cost line is read (`events: Ir`).
 */
export function parseSelfCosts(text: string): DumpCosts {
  const names = { fn: new Map<string, string>(), ob: new Map<string, string>() };
  const resolve = (kind: 'fn' | 'ob', value: string): string => {
    const match = /^\((\d+)\)(?:\s+(.*))?$/.exec(value);
    if (!match) return value;
    const id = match[1] as string;
    if (match[2] !== undefined) names[kind].set(id, match[2]);
    return names[kind].get(id) ?? `(${id})`;
  };
  const byFunction = new Map<string, number>();
  const categoryOf = new Map<string, Category>();
  const byCategory = emptyCosts();
  let ob = '';
  let fn = '';
  let category: Category = 'other';
  let skipNext = false;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const first = line.charCodeAt(0);
    // Cost lines start with a position: a digit, +, - or *.
    if ((first >= 48 && first <= 57) || first === 43 || first === 45 || first === 42) {
      if (skipNext) {
        skipNext = false;
        continue;
      }
      const space = line.lastIndexOf(' ');
      const cost = space < 0 ? 0 : Number(line.slice(space + 1));
      if (!Number.isFinite(cost) || cost === 0) continue;
      byCategory[category] += cost;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + cost);
      continue;
    }
    const equals = line.indexOf('=');
    if (equals < 0) continue;
    const key = line.slice(0, equals);
    const value = line.slice(equals + 1);
    if (key === 'ob') ob = resolve('ob', value);
    else if (key === 'cob') resolve('ob', value);
    else if (key === 'fn') {
      const symbol = resolve('fn', value);
      category = categorize(symbol, ob);
      fn = category === 'jit' ? JIT_NAME : qualifiedName(symbol);
      categoryOf.set(fn, category);
    } else if (key === 'cfn') resolve('fn', value);
    else if (key === 'calls') skipNext = true;
  }
  return { byCategory, byFunction, categoryOf };
}

/** Per category, one phase's instructions minus another's, divided by `units`. */
export function categoryDelta(
  long: Record<Category, number>,
  short: Record<Category, number>,
  units: number,
): Record<Category, number> {
  const delta = emptyCosts();
  for (const category of CATEGORIES) delta[category] = (long[category] - short[category]) / units;
  return delta;
}

/** Adds `more` into `into` (both categories and functions). */
export function addCosts(into: DumpCosts, more: DumpCosts): DumpCosts {
  for (const category of CATEGORIES) into.byCategory[category] += more.byCategory[category];
  for (const [fn, cost] of more.byFunction) into.byFunction.set(fn, (into.byFunction.get(fn) ?? 0) + cost);
  for (const [fn, category] of more.categoryOf) into.categoryOf.set(fn, category);
  return into;
}

/** What a case spends per unit, by category and for its costliest functions (median over its pairs). */
export interface CaseBreakdown {
  categories: Record<Category, number>;
  /** [qualified function name, category, instructions per unit], the {@link TOP_FUNCTIONS} largest. */
  functions: Array<[string, Category, number]>;
}

/** Functions kept per case: enough that the ones idstitch adds to bare's are among them for both. */
export const TOP_FUNCTIONS = 120;

/**
 * A case's breakdown from its measured phases' costs (n, 2n, n, 2n …; the warm-up left out): per pair,
 * (2n phase − n phase) / units, then the median of the pairs, per category and per function.
 */
export function caseBreakdown(phases: readonly DumpCosts[], units: number, pairs: number): CaseBreakdown {
  if (phases.length !== 2 * pairs) {
    throw new RangeError(`${phases.length} measured phases for ${pairs} pairs: expected ${2 * pairs}`);
  }
  const perPair = Array.from({ length: pairs }, (_, pair) => ({
    short: phases[2 * pair] as DumpCosts,
    long: phases[2 * pair + 1] as DumpCosts,
  }));
  const categories = emptyCosts();
  for (const category of CATEGORIES) {
    categories[category] = median(
      perPair.map(({ short, long }) => (long.byCategory[category] - short.byCategory[category]) / units),
    );
  }
  const names = new Set<string>();
  for (const { long } of perPair) for (const fn of long.byFunction.keys()) names.add(fn);
  const functions: Array<[string, Category, number]> = [];
  for (const fn of names) {
    const value = median(
      perPair.map(
        ({ short, long }) => ((long.byFunction.get(fn) ?? 0) - (short.byFunction.get(fn) ?? 0)) / units,
      ),
    );
    const category = phases.find((phase) => phase.categoryOf.has(fn))?.categoryOf.get(fn) ?? 'other';
    functions.push([fn, category, Math.round(value)]);
  }
  functions.sort((a, b) => Math.abs(b[2]) - Math.abs(a[2]));
  return { categories, functions: functions.slice(0, TOP_FUNCTIONS) };
}

/** Reads one dump file's self costs. */
export function readDumpCosts(file: string): DumpCosts {
  return parseSelfCosts(readFileSync(file, 'utf8'));
}
