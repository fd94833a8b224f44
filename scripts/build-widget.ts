// Builds the embeddable chat widget (src/widget/) into public/dist/, which the gateway serves under /widget/.
//   npm run build            (also run by `npm start` and `npm test` through prestart/pretest)
// Output: chat-widget.js (the <chat-widget> element with the SDK and socket.io-client bundled in, an ES module)
// and demo.js (the demo page's script), each with a source map. public/dist/ is generated: never commit it.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Metafile } from 'esbuild';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const WIDGET_OUTDIR = `${ROOT}public/dist`;

/** What the gateway serves under /widget/: the element's bundle and the demo page's script. */
export const WIDGET_ENTRIES: Record<string, string> = { 'chat-widget': 'src/widget/index.ts', demo: 'src/widget/demo-page.ts' };

export interface BuildWidgetOptions {
  outdir?: string;
  minify?: boolean;
  /** Output name → source, relative to the repository (default WIDGET_ENTRIES). */
  entryPoints?: Record<string, string>;
}

/** Bundles the widget and the demo page script; resolves with the output files and their sizes in bytes. */
export async function buildWidget(options: BuildWidgetOptions = {}): Promise<{ file: string; bytes: number }[]> {
  const outdir = options.outdir ?? WIDGET_OUTDIR;
  await mkdir(outdir, { recursive: true });
  // Built beside outdir (same depth: the source maps' relative paths stay right), then renamed into place file by
  // file: a server (or a parallel test file building too) never reads a half-written bundle.
  const staging = await mkdtemp(join(dirname(outdir), '.widget-build-'));
  try {
    const result = await buildInto(staging, options.minify ?? true, options.entryPoints ?? WIDGET_ENTRIES);
    for (const file of await readdir(staging)) await rename(join(staging, file), join(outdir, file));
    return outputsOf(result, outdir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function buildInto(outdir: string, minify: boolean, entryPoints: Record<string, string>): Promise<Metafile> {
  // Imported here: an install without dev dependencies can still start with a bundle built beforehand.
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints,
    outdir,
    bundle: true,
    // An ES module: `<script type="module" src=".../widget/chat-widget.js">`; the gateway serves it with CORS
    // headers so other origins can load it. es2022 covers every browser that has custom elements and
    // adoptedStyleSheets (the widget needs both).
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify,
    sourcemap: 'linked',
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  return result.metafile;
}

function outputsOf(metafile: Metafile, outdir: string): { file: string; bytes: number }[] {
  return Object.entries(metafile.outputs)
    .filter(([file]) => file.endsWith('.js'))
    .map(([file, out]) => ({ file: join(outdir, file.slice(file.lastIndexOf('/') + 1)).replace(ROOT, ''), bytes: out.bytes }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(
      'Usage: npm run build [-- --no-minify]\n\nBundles the <chat-widget> element and the demo page script into public/dist/ (served under /widget/).',
    );
    process.exit(0);
  }
  const started = Date.now();
  const esbuildMissing = await import('esbuild').then(
    () => false,
    () => true,
  );
  if (esbuildMissing) {
    // `npm start` after `npm ci --omit=dev` (prestart builds): keep a bundle built earlier, else say what to do.
    if (existsSync(join(WIDGET_OUTDIR, 'chat-widget.js'))) {
      console.warn('esbuild is not installed (dev dependency): keeping the widget bundle already in public/dist/');
      process.exit(0);
    }
    console.error('esbuild is not installed: run `npm ci` (with dev dependencies) to build the widget into public/dist/');
    process.exit(1);
  }
  const outputs = await buildWidget({ minify: !process.argv.includes('--no-minify') });
  for (const o of outputs) console.log(`  ${o.file}  ${(o.bytes / 1024).toFixed(1)} KiB`);
  console.log(`widget built in ${Date.now() - started} ms`);
}
