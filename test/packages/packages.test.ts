// The three npm packages as a team gets them: `npm pack` (which builds each through its prepack script), the
// tarballs installed into a scratch project in a temporary directory (offline from npm's cache when it has
// everything), then: every public name imported and type-checked by the repository's TypeScript under both module
// resolutions apps use; the packed SDK imported by Node and talking to a real gateway; and each package from a
// `<script type="module">` in Chromium (the SDK and the React bindings through an import map, the widget by itself).
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WIDGET_OUTDIR } from '../../scripts/build-widget.ts';
import { ensureWidgetBuilt, launchChromium, until, watchErrors } from '../browser/helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PACKAGES = ['@chat-gateway/sdk', '@chat-gateway/widget', '@chat-gateway/react'];
/** The SDK's runtime exports: a name added or removed must be added here (and to the type check below) on purpose. */
const SDK_VALUES = [
  'AFFINITY_PARAM',
  'ChatClient',
  'ChatError',
  'PROTOCOL_VERSION',
  'affinityKey',
  'createChatClient',
  'isFinal',
  'jwtSub',
  'randomId',
];
const REACT_VALUES = [
  'ChatError',
  'ChatProvider',
  'isFinal',
  'useChatClient',
  'useConnectionStatus',
  'useConversation',
  'useConversations',
];

/** npm and node as the tests run them: Node 24 first on PATH, so npm's scripts (the packages' builds) run on it. */
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, npm_config_update_notifier: 'false' };

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

interface Packed {
  name: string;
  version: string;
  filename: string;
  files: { path: string }[];
}

let scratch: string;
let packed: Packed[];
let db: TestDatabase;
let gateway: StartedGateway;
let site: { server: Server; origin: string };

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'chat-packages-'));
  // What the gateway serves, to compare with the packed widget.
  await ensureWidgetBuilt();
  // The builds' own log lines come before npm's JSON on stdout.
  const out = run('npm', ['pack', ...PACKAGES.flatMap((p) => ['-w', p]), '--pack-destination', scratch, '--json'], ROOT);
  packed = JSON.parse(out.slice(out.search(/^\[/m)));
  await writeFile(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  // The peers an app brings itself: React (and its types, an optional peer), and React DOM for the page below.
  const peers = ['react', 'react-dom', '@types/react'].map((p) => `${p}@${installedVersion(p)}`);
  run('npm', ['install', ...packed.map((p) => `./${p.filename}`), ...peers, '--prefer-offline', '--no-audit', '--no-fund'], scratch);
  site = await serveScratch();
  db = await createTestDatabase();
  gateway = await startGateway({ DATABASE_URL: db.url, ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '1', CORS_ORIGINS: site.origin });
}, 120_000);

afterAll(async () => {
  site?.server.closeAllConnections();
  site?.server.close();
  await gateway?.close();
  await db?.drop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** The version the repository itself installed (react is a dev dependency of packages/react; react-dom of the React example). */
function installedVersion(name: string): string {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

describe('npm pack', () => {
  it('packs each package with its build, its README and package.json, and nothing of the sources', () => {
    expect(packed.map((p) => p.name)).toEqual(PACKAGES);
    const rootVersion = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    for (const p of packed) {
      expect(p.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(p.version).toBe(rootVersion);
      const paths = p.files.map((f) => f.path);
      expect(paths).toContain('package.json');
      expect(paths).toContain('README.md');
      expect(paths.filter((f) => !f.startsWith('dist/') && f !== 'package.json' && f !== 'README.md')).toEqual([]);
    }
    const files = (name: string) => packed.find((p) => p.name === name)!.files.map((f) => f.path);
    expect(files('@chat-gateway/sdk')).toEqual(expect.arrayContaining(['dist/index.js', 'dist/types/sdk/index.d.ts']));
    expect(files('@chat-gateway/widget')).toEqual(expect.arrayContaining(['dist/chat-widget.js', 'dist/types/widget/index.d.ts']));
    expect(files('@chat-gateway/react')).toEqual(expect.arrayContaining(['dist/index.js', 'dist/types/index.d.ts']));
  });

  it('keeps socket.io-client a dependency of the SDK, React a peer of the bindings, and no Node built-in in the browser code', async () => {
    const manifest = (name: string) => JSON.parse(readFileSync(join(scratch, 'node_modules', name, 'package.json'), 'utf8'));
    expect(manifest('@chat-gateway/sdk').dependencies).toEqual({ 'socket.io-client': expect.any(String) });
    expect(manifest('@chat-gateway/react').peerDependencies).toMatchObject({ react: expect.any(String) });
    expect(manifest('@chat-gateway/react').dependencies).toEqual({ '@chat-gateway/sdk': expect.any(String) });
    const sdk = await readFile(join(scratch, 'node_modules/@chat-gateway/sdk/dist/index.js'), 'utf8');
    // Imported, not bundled: the only import of the bundle is socket.io-client.
    expect([...sdk.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1])).toEqual(['socket.io-client']);
    for (const file of ['sdk/dist/index.js', 'widget/dist/chat-widget.js', 'react/dist/index.js']) {
      const text = await readFile(join(scratch, 'node_modules/@chat-gateway', file), 'utf8');
      expect(text, file).not.toMatch(/from\s*["']node:|require\(/);
    }
  });

  it('ships the very widget bundle the gateway serves at /widget/chat-widget.js', async () => {
    const fromServer = await (await fetch(`${gateway.url}/widget/chat-widget.js`)).text();
    const packedWidget = await readFile(join(scratch, 'node_modules/@chat-gateway/widget/dist/chat-widget.js'), 'utf8');
    expect(packedWidget).toBe(await readFile(join(WIDGET_OUTDIR, 'chat-widget.js'), 'utf8'));
    expect(packedWidget).toBe(fromServer);
  });
});

describe('types', () => {
  const CHECK = `
import {
  AFFINITY_PARAM, ChatClient, ChatError, PROTOCOL_VERSION, affinityKey, createChatClient, isFinal, jwtSub, randomId,
  type Ack, type ChatClientEvents, type ChatClientOptions, type ChatErrorCode, type ChatSocket, type CommandPayloads,
  type CommandResults, type ConnectErrorData, type ConnectionStatus, type ConversationDto, type ErrorCode,
  type IncomingNotification, type MessageDelta, type MessageDto, type Role, type Status, type ToolCallDto,
  type ToolUpdate, type WireError,
} from '@chat-gateway/sdk';
import {
  ChatWidget, ChatError as WidgetChatError, createChatClient as widgetClient,
  type ChatErrorDetail, type ChatStatusDetail, type TokenGetter,
} from '@chat-gateway/widget';
import {
  ChatProvider, ChatError as ReactChatError, isFinal as reactIsFinal, useChatClient, useConnectionStatus, useConversation,
  useConversations, type ChatClient as ReactChatClient, type ChatClientOptions as ReactOptions, type ChatProviderProps,
  type ConnectionStatus as ReactStatus, type ConversationDto as ReactConversation, type ConversationState,
  type ConversationsState, type MessageDto as ReactMessage, type ToolCallDto as ReactToolCall,
} from '@chat-gateway/react';

const version: 1 = PROTOCOL_VERSION;
const options: ChatClientOptions = { url: 'https://chat.example.com', getToken: async () => 'jwt' };
const chat: ChatClient = createChatClient(options);
const socket: ChatSocket = chat.socket;
const off: () => void = chat.on('message', (m: MessageDto) => isFinal(m) && m.role satisfies Role && m.status satisfies Status);
chat.on('delta', (d: MessageDelta, m: MessageDto) => d.text + m.content);
chat.on('tool', (u: ToolUpdate) => u.call satisfies ToolCallDto);
const sent: Promise<CommandResults['message:send']> = chat.send({ content: 'hi' } satisfies Omit<CommandPayloads['message:send'], 'clientMessageId'>);
const list: ConversationDto[] = chat.conversations();
const code: ChatErrorCode = new ChatError('UNSUPPORTED_PROTOCOL', 'x').code;
const wire: WireError = { code: 'RATE_LIMITED' satisfies ErrorCode, message: 'slow down', retryAfterMs: 1000 };
const ack: Ack<number> = { ok: false, error: wire };
const refused: ConnectErrorData = { code: 'UNSUPPORTED_PROTOCOL', supported: [1] };
const status: ConnectionStatus = chat.status;
const events: keyof ChatClientEvents = 'status';
const incoming: IncomingNotification = ['sync:required', { reason: 'fanout_interrupted', spreadMs: 1000 }];
const ids: (string | undefined)[] = [jwtSub('a.b.c'), randomId(), affinityKey('user-1')];
const spread: ChatClientOptions = { ...options, userAffinity: false };
const param: string = AFFINITY_PARAM + spread.url;

const widget: ChatWidget | null = document.querySelector('chat-widget');
const getter: TokenGetter = () => 'jwt';
if (widget) widget.getToken = getter;
const onStatus = (e: CustomEvent<ChatStatusDetail>) => e.detail;
const onError = (e: CustomEvent<ChatErrorDetail>) => e.detail;
const sameError: typeof WidgetChatError.prototype.code = code;
const widgetChat = widgetClient({ url: 'https://chat.example.com', token: 'jwt' });

function Probe(): null {
  const client: ReactChatClient = useChatClient();
  const s: ReactStatus = useConnectionStatus();
  const all: ConversationsState = useConversations({ pageSize: 20 });
  const one: ConversationState = useConversation(all.conversations[0]?.id ?? null);
  const first: ReactConversation | undefined = all.conversations[0];
  const last: ReactMessage | undefined = one.messages.at(-1);
  const calls: ReactToolCall[] = [];
  void one.send('hello').then((r) => r.conversation.id);
  void one.stop();
  if (last && reactIsFinal(last) && client && s && first && calls) throw new ReactChatError('INTERNAL', 'unreachable');
  return null;
}
const props: ChatProviderProps = { options: { url: 'https://chat.example.com', token: 'jwt' } satisfies ReactOptions, fallback: null };
const provider = ChatProvider({ client: chat, children: null });

export { version, socket, off, sent, list, ack, refused, status, events, incoming, ids, onStatus, onError, sameError, widgetChat, Probe, props, provider };
`;

  for (const resolution of ['nodenext', 'bundler'] as const) {
    it(`every public name of the three packages type-checks (moduleResolution ${resolution}, the packages' declarations checked too)`, async () => {
      const dir = join(scratch, `check-${resolution}`);
      await rm(dir, { recursive: true, force: true });
      await writeFile(join(scratch, `tsconfig.${resolution}.json`), JSON.stringify(tsconfig(resolution)));
      await writeFile(join(scratch, 'check.ts'), CHECK);
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      const result = spawnSync(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], { cwd: scratch, encoding: 'utf8' });
      expect(result.stdout + result.stderr).toBe('');
      expect(result.status).toBe(0);
    });
  }

  function tsconfig(resolution: 'nodenext' | 'bundler') {
    return {
      compilerOptions: {
        target: 'es2022',
        module: resolution === 'bundler' ? 'esnext' : 'nodenext',
        moduleResolution: resolution,
        lib: ['es2023', 'dom'],
        strict: true,
        noEmit: true,
        // The installed packages' declarations are checked as well, as a strict app would.
        skipLibCheck: false,
        verbatimModuleSyntax: true,
        types: [],
      },
      files: ['check.ts'],
    };
  }
});

describe('Node', () => {
  it('imports the packed SDK (ESM) and talks to a gateway with it', async () => {
    const script = `
import * as sdk from '@chat-gateway/sdk';
const chat = sdk.createChatClient({ url: process.env.GATEWAY, token: process.env.TOKEN });
const { message, conversation } = await chat.send({ content: 'from the packed SDK' });
const reply = await new Promise((resolve) => chat.on('message', (m) => m.role === 'assistant' && sdk.isFinal(m) && resolve(m)));
console.log(JSON.stringify({ exports: Object.keys(sdk).sort(), seq: message.seq, title: conversation.title, reply: reply.content }));
chat.close();
`;
    await writeFile(join(scratch, 'node-check.mjs'), script);
    // Not spawnSync: the gateway runs in this process and must go on answering meanwhile.
    const out = await promisify(execFile)(process.execPath, ['node-check.mjs'], {
      cwd: scratch,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...env, GATEWAY: gateway.url, TOKEN: gateway.tokenFor('packed-node') },
    });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toEqual({
      exports: SDK_VALUES,
      seq: 1,
      title: 'from the packed SDK',
      reply: 'Echo: from the packed SDK',
    });
  });
});

describe('<script type="module">', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('the SDK and the React bindings through an import map, the widget by itself, each against the gateway', async () => {
    const page = await (await browser.newContext()).newPage();
    const errors = watchErrors(page, 'packages page');
    const query = new URLSearchParams({ gateway: gateway.url, token: gateway.tokenFor('packed-browser') });
    await page.goto(`${site.origin}/page.html?${query}`);
    const result = await until(
      () => page.evaluate(() => (window as { result?: Record<string, unknown> }).result),
      'the page to finish',
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the page's errors: ${errors.join('\n') || 'none'}`);
    });
    expect(errors).toEqual([]);
    expect(result).toEqual({
      sdk: { protocol: 1, seq: 1, exports: SDK_VALUES },
      react: { status: 'connected', exports: REACT_VALUES },
      widget: { defined: true, status: 'connected' },
    });
  });
});

/**
 * A static site over the scratch project: its node_modules as installed, a page, and React as one ES module
 * (React ships CommonJS only; an app without a bundler maps it to an ES build, as CDNs make them).
 */
async function serveScratch(): Promise<{ server: Server; origin: string }> {
  const { build } = await import('esbuild');
  await writeFile(
    join(scratch, 'react-entry.js'),
    `import * as React from 'react';
export const { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } = React;
export { createRoot } from 'react-dom/client';`,
  );
  await build({
    absWorkingDir: scratch,
    entryPoints: ['react-entry.js'],
    outfile: join(scratch, 'react.js'),
    bundle: true,
    format: 'esm',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  await writeFile(join(scratch, 'page.html'), PAGE);
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json' };
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    try {
      const body = await readFile(join(scratch, path));
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>packages</title><link rel="icon" href="data:,">
<script type="importmap">
{ "imports": {
  "socket.io-client": "/node_modules/socket.io-client/dist/socket.io.esm.min.js",
  "@chat-gateway/sdk": "/node_modules/@chat-gateway/sdk/dist/index.js",
  "@chat-gateway/react": "/node_modules/@chat-gateway/react/dist/index.js",
  "react": "/react.js",
  "react-dom/client": "/react.js"
} }
</script>
<script type="module" src="/node_modules/@chat-gateway/widget/dist/chat-widget.js"></script>
</head><body>
<div id="root"></div>
<chat-widget style="height: 400px"></chat-widget>
<script type="module">
import * as sdk from '@chat-gateway/sdk';
import * as bindings from '@chat-gateway/react';
import { createElement as h } from 'react';
import { createRoot } from 'react-dom/client';

const params = new URLSearchParams(location.search);
const url = params.get('gateway');
const token = params.get('token');

const chat = sdk.createChatClient({ url, token });
const { message } = await chat.send({ content: 'from a script tag' });
chat.close();

function Status() {
  return h('p', { id: 'status' }, bindings.useConnectionStatus());
}
createRoot(document.getElementById('root')).render(h(bindings.ChatProvider, { options: { url, token } }, h(Status)));
const rendered = await new Promise((resolve) => {
  const check = () => {
    const text = document.getElementById('status')?.textContent;
    if (text === 'connected') resolve(text);
    else setTimeout(check, 20);
  };
  check();
});

const widget = document.querySelector('chat-widget');
const widgetStatus = new Promise((resolve) => widget.addEventListener('chat-status', (e) => e.detail.status === 'connected' && resolve('connected')));
// Served from another host than the gateway: \`server\` says where the gateway is.
widget.setAttribute('server', url);
widget.token = token;
window.result = {
  sdk: { protocol: sdk.PROTOCOL_VERSION, seq: message.seq, exports: Object.keys(sdk).sort() },
  react: { status: rendered, exports: Object.keys(bindings).sort() },
  widget: { defined: customElements.get('chat-widget') === widget.constructor, status: await widgetStatus },
};
</script>
</body></html>
`;
