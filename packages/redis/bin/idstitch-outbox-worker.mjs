#!/usr/bin/env node
// The published `idstitch-outbox-worker` command: one outbox delivery worker, configured from the
// environment (see `idstitch-outbox-worker --help`), until SIGTERM or SIGINT. Resolved through the
// package's own `./cli` export, so inside this repository `node --conditions=@idstitch/source --import tsx`
// runs the TypeScript source.
import { runFromProcess } from '@idstitch/redis/cli';

process.exit(await runFromProcess());
