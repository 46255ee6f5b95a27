import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

export interface MachineInfo {
  date: string;
  node: string;
  v8: string;
  platform: string;
  kernel: string;
  cpu: string;
  cores: number;
  memoryGb: number;
  commit: string | undefined;
  /** Uncommitted files under packages/ when the run started (the built dist/ includes them). */
  dirty: string[] | undefined;
  versions: Record<string, string>;
}

const require = createRequire(import.meta.url);

function version(name: string): string {
  try {
    const path = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    try {
      // Packages whose exports hide package.json: walk up from the entry point.
      let dir = require.resolve(name);
      for (let i = 0; i < 6; i++) {
        dir = dir.slice(0, dir.lastIndexOf('/'));
        try {
          const json = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as {
            name?: string;
            version?: string;
          };
          if (json.name === name && json.version) return json.version;
        } catch {
          // keep walking
        }
      }
    } catch {
      // not installed
    }
    return 'n/a';
  }
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd();
  } catch {
    return undefined;
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const status = git(['status', '--porcelain', '--', '../packages']);
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.type()} ${os.arch()}`,
    kernel: os.release(),
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty:
      status === undefined
        ? undefined
        : status
            .split('\n')
            .filter((line) => line.trim() !== '')
            .map((line) => line.slice(3)),
    versions: Object.fromEntries(
      [
        'express',
        'koa',
        '@nestjs/core',
        'mixpanel',
        '@segment/analytics-node',
        'posthog-node',
        'cookie-parser',
        'uuid',
        'autocannon',
        'tinybench',
      ].map((name) => [name, version(name)]),
    ),
  };
}

function cpuTicks(): Map<number, { comm: string; ticks: number }> {
  const ticks = new Map<number, { comm: string; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "pid (comm) ".
      ticks.set(Number(entry), { comm, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks;
}

export interface LoadSnapshot {
  at: string;
  load1: number;
  /** Processes other than this benchmark's that used at least 5 % of a core over one second. */
  others: string[];
}

/** The 1-minute load average and what else is using the CPU right now (sampled over one second). */
export async function loadSnapshot(): Promise<LoadSnapshot> {
  const [load1 = 0] = os.loadavg();
  let others: string[] = [];
  try {
    const first = cpuTicks();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const second = cpuTicks();
    const hz = 100;
    others = [...second.entries()]
      .filter(([pid]) => pid !== process.pid)
      .map(([pid, { comm, ticks }]) => ({
        pid,
        comm,
        percent: ((ticks - (first.get(pid)?.ticks ?? ticks)) / hz) * 100,
      }))
      .filter((entry) => entry.percent >= 5)
      .sort((a, b) => b.percent - a.percent)
      .slice(0, 5)
      .map((entry) => `${entry.comm} (pid ${entry.pid}) ${entry.percent.toFixed(0)} %`);
  } catch {
    // no /proc: the load average still says something
  }
  return { at: new Date().toISOString(), load1, others };
}
