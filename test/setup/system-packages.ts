// Vitest global setup: the browser tests need Debian's Chromium, the load-balancer tests Debian's nginx, and the
// Redis Cluster test Debian's redis-server (the machine's own Redis may be a service without it). On a
// fresh machine none of them may be installed, so when the run includes those tests and they are missing, they are
// installed here from Debian's packages (as root), before any test starts. Otherwise the tests that need them
// fail with a message saying what to install.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const PACKAGES = [
  // The packages' script-tag checks and the React example run in Chromium too.
  {
    name: 'chromium',
    binary: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    folders: ['test/browser', 'test/packages', 'test/examples'],
  },
  { name: 'nginx-light', binary: process.env.NGINX_PATH ?? '/usr/sbin/nginx', folders: ['test/nginx'] },
  // The Redis Cluster test starts servers of its own (and brings redis-cli, which creates the cluster); bench:scale,
  // run by test/bench, starts a private one.
  {
    name: 'redis-server',
    binary: process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server',
    folders: ['test/faults', 'test/bench'],
  },
];

/** The file filters given to `vitest run`; none means the whole suite. */
function filters(): string[] {
  const args = process.argv.slice(2);
  return args.filter((a, i) => !a.startsWith('-') && a !== 'run' && !args[i - 1]?.match(/^-(t|-testNamePattern|-project|-config|c)$/));
}

/** Whether the run includes a test file of `folder` (vitest matches each filter as a part of the file's path). */
function wanted(folder: string): boolean {
  const given = filters().map((f) => f.replace(/^\.\//, ''));
  if (given.length === 0) return true;
  const files = existsSync(folder) ? readdirSync(folder).map((name) => `${folder}/${name}`) : [];
  return given.some((f) => folder.startsWith(f) || files.some((file) => file.includes(f)));
}

export default function setup(): void {
  const missing = PACKAGES.filter((p) => p.folders.some(wanted) && !existsSync(p.binary));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.name);
  if (process.getuid?.() !== 0) {
    console.warn(
      `\n[tests] ${names.join(' and ')} missing; the tests that need them will fail. Install them: sudo apt-get install -y ${names.join(' ')}\n`,
    );
    return;
  }
  console.log(
    `\n[tests] installing ${names.join(' and ')} from Debian's packages (needed by ${missing.flatMap((p) => p.folders).join(', ')})`,
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], { stdio: 'inherit', env });
}
