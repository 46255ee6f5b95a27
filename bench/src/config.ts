/** How long and how often each scenario runs: the full run for RESULTS.md, or `--quick` for CI. */
export interface BenchConfig {
  quick: boolean;
  overhead: {
    rounds: number;
    warmupSeconds: number;
    durationSeconds: number;
    connections: number;
    /** Express's diagnostic variants too (middleware alone, null sink, HTTPS ingest): `--diagnostics`. */
    diagnostics: boolean;
  };
  delivery: { rounds: number; events: number };
  stall: { rounds: number; events: number };
  micro: { rounds: number; timeMs: number };
  /**
   * Instructions per request under callgrind: warm-up units, then `pairs` times n and 2n units; the figure is
   * the median of the pairs (instructions/pairs.ts). Rounds repeat that in fresh processes.
   */
  instructions: {
    rounds: number;
    warmup: number;
    n: number;
    pairs: number;
    /**
     * Instrument the start-up and the warm-up too (callgrind's default, `--instrument-warmup`), instead of
     * switching instrumentation on after the warm-up: the same counts, about twice the wall time.
     */
    instrumentWarmup: boolean;
  };
  /** Profile the scenarios whose targets were missed (full run only). */
  profile: boolean;
}

/**
 * The same phases in the quick and the full run: the count is only as stable as its warm-up is long. V8 still
 * optimises the request path after 1 900 requests (the main thread's count per 200 requests declines smoothly
 * until then); see bench/README.md for what was measured.
 */
const INSTRUCTIONS = { warmup: 2000, n: 200, pairs: 3 };

export function configFor(
  quick: boolean,
  overrides: {
    rounds?: number;
    instructionRounds?: number;
    instrumentWarmup?: boolean;
    diagnostics?: boolean;
  } = {},
): BenchConfig {
  if (quick) {
    return {
      quick,
      overhead: {
        rounds: 1,
        warmupSeconds: 1,
        durationSeconds: 2,
        connections: 64,
        diagnostics: overrides.diagnostics ?? false,
      },
      delivery: { rounds: 1, events: 10_000 },
      stall: { rounds: 1, events: 100_000 },
      micro: { rounds: 1, timeMs: 150 },
      instructions: {
        ...INSTRUCTIONS,
        rounds: overrides.instructionRounds ?? 1,
        instrumentWarmup: overrides.instrumentWarmup ?? false,
      },
      profile: false,
    };
  }
  const rounds = overrides.rounds ?? 3;
  // Sized so that the whole run stays under 20 minutes on a 2-core machine (bench/README.md, "Duration"): the
  // instruction counts are the stable figure and take most of it; the timed scenarios are read as ratios within a
  // round.
  return {
    quick,
    // req/s is the secondary figure (issue 12 states its targets in instructions): 10 variants × 2 rounds (the
    // order rotated between them), 1 s of warm-up and 3 s of load each (20 000–150 000 requests), plus about 2.3 s
    // of process start-up.
    overhead: {
      rounds: overrides.rounds ?? 2,
      warmupSeconds: 1,
      durationSeconds: 3,
      connections: 64,
      diagnostics: overrides.diagnostics ?? false,
    },
    // 100 000 events: idstitch's and import_batch's events per CPU second within 3 % of 200 000's.
    delivery: { rounds, events: 100_000 },
    stall: { rounds: Math.max(1, Math.min(rounds, 2)), events: 1_000_000 },
    micro: { rounds, timeMs: 500 },
    instructions: {
      ...INSTRUCTIONS,
      rounds: overrides.instructionRounds ?? 1,
      instrumentWarmup: overrides.instrumentWarmup ?? false,
    },
    profile: true,
  };
}
