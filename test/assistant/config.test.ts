// The assistant's settings as loadConfig reads them: defaults, the system prompt from a variable or a file, the
// bounds, and MCP_SERVERS with the secret its tokens are signed with. A bad value stops the start with a message
// naming the variable; nothing here starts a gateway.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPromptFor } from '../../src/assistant/system-prompt.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

const JWT_SECRET = 'assistant-config-test-secret-0123456789abcdefghij';
const MCP_TOKEN_SECRET = 'm'.repeat(32);
const load = (env: Record<string, string>) => loadConfig({ JWT_SECRET, ...env });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assistant-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('assistant settings', () => {
  it('defaults: 50 messages of context, 5 steps, 60 s a step, 30 s a tool call, 32,000 characters, no prompt, no MCP', () => {
    const { assistant, mcp } = load({});
    expect(assistant).toMatchObject({
      contextMessages: 50,
      maxSteps: 5,
      stepTimeoutMs: 60_000,
      toolTimeoutMs: 30_000,
      maxReplyChars: 32_000,
      timeoutMs: 120_000,
      systemPrompt: undefined,
    });
    expect(mcp).toBeUndefined();
  });

  it('reads the system prompt from the variable or from a file, not both', async () => {
    expect(load({ ASSISTANT_SYSTEM_PROMPT: 'Be brief, {{userId}}.' }).assistant.systemPrompt).toBe('Be brief, {{userId}}.');
    const file = join(dir, 'prompt.txt');
    await writeFile(file, 'You keep todo lists.\nToday is {{date}}.\n');
    expect(load({ ASSISTANT_SYSTEM_PROMPT_FILE: file }).assistant.systemPrompt).toBe('You keep todo lists.\nToday is {{date}}.');
    expect(() => load({ ASSISTANT_SYSTEM_PROMPT: 'a', ASSISTANT_SYSTEM_PROMPT_FILE: file })).toThrow(/both set/);
    expect(() => load({ ASSISTANT_SYSTEM_PROMPT_FILE: join(dir, 'missing.txt') })).toThrow(/ASSISTANT_SYSTEM_PROMPT_FILE: cannot read/);
  });

  it('fills the placeholders per reply: the user id and the date, nothing else', () => {
    const at = new Date('2026-12-06T23:59:00Z');
    expect(systemPromptFor('For {{userId}} on {{date}}; {{token}} stays', 'alice', at)).toBe('For alice on 2026-12-06; {{token}} stays');
    expect(systemPromptFor(undefined, 'alice')).toBeUndefined();
  });

  it('refuses bounds out of range', () => {
    expect(() => load({ ASSISTANT_CONTEXT_MESSAGES: '201' })).toThrow(/ASSISTANT_CONTEXT_MESSAGES/);
    expect(() => load({ ASSISTANT_CONTEXT_MESSAGES: '0' })).toThrow(/ASSISTANT_CONTEXT_MESSAGES/);
    expect(() => load({ ASSISTANT_MAX_STEPS: '0' })).toThrow(/ASSISTANT_MAX_STEPS/);
    expect(() => load({ ASSISTANT_MAX_REPLY_CHARS: 'lots' })).toThrow(/ASSISTANT_MAX_REPLY_CHARS/);
    expect(() => load({ ASSISTANT_STEP_TIMEOUT_MS: '0' })).toThrow(/ASSISTANT_STEP_TIMEOUT_MS/);
  });
});

describe('MCP_SERVERS', () => {
  it('is a comma list of name=url, with the secret', () => {
    const { mcp } = load({ MCP_SERVERS: ' todo=http://todo-mcp:4000/mcp , crm=https://crm.example.com/mcp', MCP_TOKEN_SECRET });
    expect(mcp).toEqual({
      servers: [
        { name: 'todo', url: 'http://todo-mcp:4000/mcp' },
        { name: 'crm', url: 'https://crm.example.com/mcp' },
      ],
      tokenSecret: MCP_TOKEN_SECRET,
      toolsCacheMs: 60_000,
    });
  });

  it('needs MCP_TOKEN_SECRET of at least 32 bytes', () => {
    expect(() => load({ MCP_SERVERS: 'todo=http://a/mcp' })).toThrow(/MCP_TOKEN_SECRET is not/);
    expect(() => load({ MCP_SERVERS: 'todo=http://a/mcp', MCP_TOKEN_SECRET: 'x'.repeat(31) })).toThrow(ConfigError);
    expect(() => load({ MCP_SERVERS: 'todo=http://a/mcp', MCP_TOKEN_SECRET: 'x'.repeat(31) })).toThrow(/31 bytes/);
  });

  it('refuses entries without a name, with another scheme, or named twice', () => {
    for (const bad of [
      'http://a/mcp',
      '=http://a/mcp',
      'to do=http://a/mcp',
      'todo=ftp://a/mcp',
      'todo=not a url',
      'a=http://a,a=http://b',
    ]) {
      expect(() => load({ MCP_SERVERS: bad, MCP_TOKEN_SECRET }), bad).toThrow(/MCP_SERVERS/);
    }
  });
});
