#!/usr/bin/env node
// The `waterbear` command. The TypeScript sources are compiled to dist/ by `npm install` (prepare).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('waterbear: dist/ is missing; run `npm install` (or `npm run build`) in the waterbear folder first\n');
  process.exit(2);
}
const { runCli, muteKnownWarnings } = await import(main.href);
muteKnownWarnings();
process.exitCode = await runCli(process.argv.slice(2));
