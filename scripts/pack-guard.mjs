#!/usr/bin/env node
// `prepack` of every publishable package: only pnpm may pack or publish them. pnpm rewrites `workspace:^`
// dependencies to real version ranges and applies `publishConfig` (exports without the `@idstitch/source`
// condition, which points at src/ that is not shipped); npm and other tools would ship both as they are.
const agent = process.env.npm_config_user_agent ?? '';
if (!agent.startsWith('pnpm/')) {
  process.stderr.write(
    `Refusing to pack ${process.env.npm_package_name ?? 'this package'} with ${agent.split(' ')[0] || 'an unknown tool'}: ` +
      'use `pnpm pack` or `pnpm publish`, which rewrite workspace:^ ranges and apply publishConfig.\n',
  );
  process.exit(1);
}
