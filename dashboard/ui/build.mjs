// Bundles the dashboard UI (dashboard/ui/app.ts, uPlot, the CSS) with esbuild into
// dist/dashboard/public/ — app.js, app.css and index.html — so the dashboard works offline.
// Run by `npm run build` (and so by `npm install`, through prepare).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'dist', 'dashboard', 'public');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(root, 'dashboard', 'ui', 'app.ts') },
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: true,
  outdir: out,
  logLevel: 'warning',
  legalComments: 'linked',
});
copyFileSync(join(root, 'dashboard', 'ui', 'index.html'), join(out, 'index.html'));
