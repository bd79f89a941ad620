// Bundles the web UI (src/ui: Preact + htm, no JSX step) into dist/ui with esbuild: one minified ES
// module and one stylesheet, no CDN and no network at build time, so it works on an offline
// provisioning network. Part of `npm run build`.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/ui');
await mkdir(out, { recursive: true });
const r = await build({
  entryPoints: [join(root, 'src/ui/main.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
await copyFile(join(root, 'src/ui/app.css'), join(out, 'app.css'));
const bytes = Object.values(r.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
if (process.argv.includes('--verbose')) console.log(`build:ui: dist/ui/app.js ${bytes} bytes`);
