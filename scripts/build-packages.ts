// Builds the npm packages under packages/ into their dist/ folders, from the sources the gateway and its tests use:
// the SDK from src/sdk, the widget from src/widget, the React bindings from packages/react/src.
//   node scripts/build-packages.ts [sdk] [widget] [react]    (no name: all three)
//   npm run build -w @chat-gateway/sdk                        (a package's own build; `npm pack` runs it too)
// JavaScript: esbuild, one ES module per package. Declarations: the repository's TypeScript (tsc 7 emits them;
// having no compiler API, it runs as a command), one .d.ts per source file under dist/types/, with the sources'
// `.ts` import specifiers rewritten to `.js` so that every consumer's module resolution finds them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWidget } from './build-widget.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const PACKAGES = ['sdk', 'widget', 'react'] as const;
export type PackageName = (typeof PACKAGES)[number];

export const packageDir = (name: PackageName) => join(ROOT, 'packages', name);

/**
 * Builds one package's dist/; resolves with its files, relative to the package. Built aside, then moved in file by
 * file (each rename is atomic) and what the build no longer makes removed: a process reading dist/ meanwhile (`npm
 * pack`, a Vite build, a second build running at the same time) never sees it missing or a file half written.
 */
export async function buildPackage(name: PackageName): Promise<string[]> {
  const dir = packageDir(name);
  const staging = await mkdtemp(join(dir, '.build-'));
  try {
    await buildInto(name, staging);
    await rewriteSpecifiers(join(staging, 'types'));
    const built = (await listFiles(staging)).map((f) => f.slice(staging.length + 1));
    for (const file of built) {
      await mkdir(dirname(join(dir, 'dist', file)), { recursive: true });
      await rename(join(staging, file), join(dir, 'dist', file));
    }
    const kept = new Set(built);
    for (const file of await listFiles(join(dir, 'dist'))) {
      if (!kept.has(file.slice(join(dir, 'dist').length + 1))) await rm(file, { force: true });
    }
    return built.map((f) => `dist/${f}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function buildInto(name: PackageName, out: string): Promise<void> {
  const dir = packageDir(name);
  if (name === 'sdk') {
    await bundle({
      entry: 'src/sdk/index.ts',
      outfile: join(out, 'index.js'),
      // A dependency, not bundled: an app that also uses socket.io-client gets one copy, and its fixes arrive with
      // the app's own updates.
      external: ['socket.io-client'],
    });
  } else if (name === 'widget') {
    // The very bundle the gateway serves at /widget/chat-widget.js (same entry, same options): self-contained, so
    // that one <script type="module"> from any host or CDN is enough.
    await buildWidget({ outdir: out, entryPoints: { 'chat-widget': 'src/widget/index.ts' } });
  } else {
    // Its declarations name the SDK's types: those of the SDK package, built first when missing.
    if (!existsSync(join(packageDir('sdk'), 'dist/types/sdk/index.d.ts'))) await buildPackage('sdk');
    await bundle({ entry: 'packages/react/src/index.ts', outfile: join(out, 'index.js'), external: ['react', '@chat-gateway/sdk'] });
  }
  emitDeclarations(join(dir, name === 'react' ? 'tsconfig.build.json' : 'tsconfig.json'), join(out, 'types'));
}

async function bundle(o: { entry: string; outfile: string; external: string[] }): Promise<void> {
  // Imported here: the gateway's own start never needs it.
  const { build } = await import('esbuild');
  await build({
    absWorkingDir: ROOT,
    entryPoints: [o.entry],
    outfile: o.outfile,
    bundle: true,
    external: o.external,
    format: 'esm',
    // As the widget: every browser with the features the code uses, and Node 20+.
    target: 'es2022',
    // Neither browser nor Node: an import of a Node built-in (or of anything not listed above) fails the build.
    platform: 'neutral',
    // Readable: bundlers minify an app's code themselves, and a stack trace into the package stays legible.
    minify: false,
    sourcemap: 'linked',
    logLevel: 'warning',
  });
}

function emitDeclarations(project: string, outDir: string): void {
  const tsc = join(createRequire(import.meta.url).resolve('typescript/package.json'), '../bin/tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', project, '--outDir', outDir], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`tsc -p ${project} failed:\n${run.stdout}${run.stderr}`);
}

/** `from './client.ts'` → `from './client.js'` in every emitted declaration file (tsc keeps what the source says). */
async function rewriteSpecifiers(dir: string): Promise<void> {
  for (const file of await listFiles(dir)) {
    if (!file.endsWith('.d.ts')) continue;
    const text = await readFile(file, 'utf8');
    const rewritten = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1$2.js$3');
    if (rewritten !== text) await writeFile(file, rewritten);
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(
      `Usage: node scripts/build-packages.ts [${PACKAGES.join('] [')}]\n\nBuilds each named package (default: all) into packages/<name>/dist/.`,
    );
    process.exit(0);
  }
  const unknown = args.filter((a) => !(PACKAGES as readonly string[]).includes(a));
  if (unknown.length) {
    console.error(`unknown package: ${unknown.join(', ')} (known: ${PACKAGES.join(', ')})`);
    process.exit(1);
  }
  for (const name of args.length ? (args as PackageName[]) : PACKAGES) {
    const started = Date.now();
    const files = await buildPackage(name);
    console.log(`@chat-gateway/${name}: ${files.length} files in dist/, built in ${Date.now() - started} ms`);
  }
}
