import type { BenchConfig } from '../config.js';
import { Child } from '../lib/child.js';
import { log } from '../lib/log.js';
import { type Summary, summarize } from '../lib/stats.js';

interface TaskResult {
  name: string;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  rmePercent: number;
  samples: number;
  opsPerSecond: number;
}

export interface MicroResult {
  rounds: number;
  timeMs: number;
  runs: TaskResult[][];
  summaries: Array<{ name: string; meanNs: Summary; p50Ns: Summary; p99Ns: Summary; rmePercent: Summary }>;
}

export async function runMicro(config: BenchConfig): Promise<MicroResult> {
  const { rounds, timeMs } = config.micro;
  const runs: TaskResult[][] = [];
  for (let round = 0; round < rounds; round++) {
    const child = new Child('micro/hotpath.js', [String(timeMs)], [], 'measured');
    const result = await child.waitFor('result', 300_000);
    await child.exit(10_000);
    runs.push(result.results as TaskResult[]);
    const tasks = result.results as TaskResult[];
    log(`micro r${round + 1}: ${tasks.map((task) => `${Math.round(task.meanNs)} ns`).join(', ')}`);
  }
  const names = runs[0]?.map((task) => task.name) ?? [];
  return {
    rounds,
    timeMs,
    runs,
    summaries: names.map((name) => {
      const of = (pick: (task: TaskResult) => number) =>
        summarize(
          runs
            .map((round) => round.find((task) => task.name === name))
            .filter((task) => task !== undefined)
            .map(pick),
        );
      return {
        name,
        meanNs: of((task) => task.meanNs),
        p50Ns: of((task) => task.p50Ns),
        p99Ns: of((task) => task.p99Ns),
        rmePercent: of((task) => task.rmePercent),
      };
    }),
  };
}
