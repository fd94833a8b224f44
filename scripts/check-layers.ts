// Checks the shape of src/: every import points to the file's own folder or to a folder on a lower layer, the
// browser code (sdk, widget) reaches only the wire contract of the server side, and no files import each other in a
// circle. Run by `npm run lint`; prints each offending import and exits 1.
//   node scripts/check-layers.ts [--help]
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Folders of src/, bottom to top. A folder may import its own files and those of any folder below it. */
const LAYERS: string[][] = [
  ['shared'],
  ['observability', 'sdk'],
  ['db', 'auth', 'limits', 'widget'],
  ['users'],
  ['conversations'],
  ['messages'],
  ['assistant'],
  ['chat', 'account'],
  ['http', 'realtime'],
  // The files directly in src/: the configuration, the entity list, the composition root and the entry points.
  ['.'],
];
/** Code that runs in browsers: it may import only these files of the server side. */
const BROWSER = new Set(['sdk', 'widget']);
const BROWSER_SAFE = new Set(['shared/events.ts', 'shared/errors.ts']);

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(
    'Usage: node scripts/check-layers.ts\n\nChecks that imports in src/ only point down the layers (see LAYERS in this file) and form no circle.',
  );
  process.exit(0);
}

const SRC = resolve(fileURLToPath(new URL('../src/', import.meta.url)));
const rank = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The relative imports of a file (static, dynamic and type-only), resolved to paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)];
  return specifiers
    .map((m) => m[1] ?? m[2]!)
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s));
}

const folderOf = (path: string) => {
  const rel = relative(SRC, path);
  return rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '.';
};

const problems: string[] = [];
const graph = new Map<string, string[]>();
for (const file of sourceFiles(SRC)) {
  const from = relative(SRC, file);
  const folder = folderOf(file);
  const own = rank.get(folder);
  if (own === undefined) problems.push(`${from}: folder "${folder}" has no place in LAYERS (scripts/check-layers.ts)`);
  const targets = importsOf(file);
  graph.set(file, targets);
  for (const target of targets) {
    const to = relative(SRC, target);
    if (to.startsWith('..')) {
      problems.push(`${from} imports ${to}, outside src/`);
      continue;
    }
    const targetFolder = folderOf(target);
    if (BROWSER.has(folder) && !BROWSER.has(targetFolder) && !BROWSER_SAFE.has(to)) {
      problems.push(`${from} (browser code) imports ${to}, which is server code`);
    }
    const theirs = rank.get(targetFolder);
    if (own !== undefined && theirs !== undefined && targetFolder !== folder && theirs >= own) {
      problems.push(`${from} imports ${to}: ${targetFolder}/ is not on a lower layer than ${folder}/`);
    }
  }
}

// Circles of files: a depth-first walk that meets a file still on its own path.
const state = new Map<string, 'walking' | 'done'>();
function walk(file: string, path: string[]) {
  state.set(file, 'walking');
  for (const next of graph.get(file) ?? []) {
    if (state.get(next) === 'walking') {
      const circle = [...path.slice(path.indexOf(next)), next].map((f) => relative(SRC, f));
      problems.push(`import circle: ${circle.join(' -> ')}`);
    } else if (!state.has(next) && graph.has(next)) {
      walk(next, [...path, next]);
    }
  }
  state.set(file, 'done');
}
for (const file of graph.keys()) if (!state.has(file)) walk(file, [file]);

if (problems.length) {
  console.error(`Layer check: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`Layer check: ${graph.size} files in src/, every import points down, no circle.`);
