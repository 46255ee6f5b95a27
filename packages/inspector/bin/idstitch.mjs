#!/usr/bin/env node
// The published `idstitch` command: runs the compiled CLI. Inside this repository, `pnpm idstitch` runs the
// TypeScript source instead, so no build is needed there.
import { main } from '../dist/esm/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
