// Debian's nginx running deploy/nginx/nginx.conf itself (only its upstreams include path, its listen port and the
// log/temporary paths are changed) in front of gateway nodes on loopback, with an upstreams file like
// deploy/nginx/chat-upstreams.conf pointing at them. nginx missing is a failure, not a skip: CI installs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
const DEPLOY = fileURLToPath(new URL('../../deploy/nginx/', import.meta.url));

export interface Nginx {
  url: string;
  dir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Replaces `from` in `text`, failing loudly when the committed config no longer has it. */
function replaceOnce(text: string, from: string | RegExp, to: string, file: string): string {
  if (!(typeof from === 'string' ? text.includes(from) : from.test(text))) {
    throw new Error(`${file} no longer contains ${String(from)}: update test/helpers/nginx.ts`);
  }
  return text.replace(from, to);
}

/**
 * Runs `nginx -p <tmp> -c <tmp>/nginx.conf -g 'daemon off; …'` with the committed nginx.conf in front of `nodes`
 * (one `server` line per node: the committed file's two, then copies of the second for more).
 * `sticky: false` drops the `hash` line from the upstreams (round robin), for the control runs.
 */
export async function startNginx(nodes: { port: number }[], options: { sticky: boolean }): Promise<Nginx> {
  if (!existsSync(NGINX)) {
    throw new Error(`nginx is not installed at ${NGINX}: run \`apt-get install -y nginx-light\` (or set NGINX_PATH). CI installs it.`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'chat-nginx-'));
  // Workers may run as an unprivileged user when the master is root: let them into the prefix.
  await chmod(dir, 0o755);
  const port = await freePort();

  let upstreams = await readFile(join(DEPLOY, 'chat-upstreams.conf'), 'utf8');
  const second = /^(\s*)server gateway2:3000(.*)$/m.exec(upstreams);
  if (!second) throw new Error('chat-upstreams.conf no longer contains server gateway2:3000: update test/helpers/nginx.ts');
  const more = nodes.slice(2).map((n) => `\n${second[1]}server 127.0.0.1:${n.port}${second[2]}`);
  upstreams = replaceOnce(upstreams, 'server gateway1:3000', `server 127.0.0.1:${nodes[0]!.port}`, 'chat-upstreams.conf');
  upstreams = replaceOnce(
    upstreams,
    /server gateway2:3000(.*)$/m,
    `server 127.0.0.1:${nodes[1]!.port}$1${more.join('')}`,
    'chat-upstreams.conf',
  );
  if (!options.sticky) upstreams = replaceOnce(upstreams, /^\s*hash \$chat_affinity consistent;\s*$/m, '', 'chat-upstreams.conf');
  await writeFile(join(dir, 'chat-upstreams.conf'), upstreams);

  let conf = await readFile(join(DEPLOY, 'nginx.conf'), 'utf8');
  conf = replaceOnce(conf, 'include /etc/nginx/chat-upstreams.conf;', `include ${join(dir, 'chat-upstreams.conf')};`, 'nginx.conf');
  conf = replaceOnce(conf, 'listen 8080;', `listen 127.0.0.1:${port};`, 'nginx.conf');
  // Logs and temporary files inside the prefix (Debian's build puts them under /var): the only other additions.
  conf = replaceOnce(
    conf,
    /^http \{$/m,
    [
      'http {',
      `  access_log ${join(dir, 'access.log')};`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, `${t}_temp`)};`),
    ].join('\n'),
    'nginx.conf',
  );
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);

  const errorLog = join(dir, 'error.log');
  const child: ChildProcess = spawn(
    NGINX,
    ['-p', dir, '-c', confPath, '-e', errorLog, '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      const log = await readFile(errorLog, 'utf8').catch(() => '');
      throw new Error(`nginx exited with ${child.exitCode}: ${stderr}\n${log}`);
    }
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`nginx did not answer on ${url}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dir,
    async stop() {
      // SIGTERM: nginx's fast shutdown (SIGQUIT would wait for every open WebSocket and long-poll).
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
