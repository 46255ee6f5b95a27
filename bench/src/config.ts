/** How long and how often each scenario runs: the full run for RESULTS.md, or `--quick` for CI. */
export interface BenchConfig {
  quick: boolean;
  overhead: {
    rounds: number;
    warmupSeconds: number;
    durationSeconds: number;
    connections: number;
  };
  delivery: { rounds: number; events: number };
  stall: { rounds: number; events: number };
  micro: { rounds: number; timeMs: number };
  /** Instructions per request under callgrind: warm-up units, then n and 2n units, per round. */
  instructions: { rounds: number; warmup: number; n: number };
  /** Profile the scenarios whose targets were missed (full run only). */
  profile: boolean;
}

export function configFor(quick: boolean, overrides: { rounds?: number } = {}): BenchConfig {
  if (quick) {
    return {
      quick,
      overhead: { rounds: 1, warmupSeconds: 1, durationSeconds: 2, connections: 64 },
      delivery: { rounds: 1, events: 10_000 },
      stall: { rounds: 1, events: 100_000 },
      micro: { rounds: 1, timeMs: 150 },
      instructions: { rounds: 1, warmup: 100, n: 100 },
      profile: false,
    };
  }
  const rounds = overrides.rounds ?? 3;
  return {
    quick,
    overhead: { rounds, warmupSeconds: 3, durationSeconds: 10, connections: 64 },
    delivery: { rounds, events: 200_000 },
    stall: { rounds: Math.max(1, Math.min(rounds, 2)), events: 1_000_000 },
    micro: { rounds: Math.max(rounds, 5), timeMs: 1000 },
    instructions: { rounds: 1, warmup: 400, n: 300 },
    profile: true,
  };
}
