// The operators' Grafana dashboard and Prometheus alert rules (deploy/) against a real gateway: every metric
// their queries name is one the gateway really exports, with labels it really has. A renamed metric or label
// would otherwise leave a panel empty, or an alert silent, with nothing to say so.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { api } from '../helpers/api.ts';
import { REDIS_URL, testRedisPrefix } from '../helpers/cluster.ts';
import { gatewayOnFreshDatabase, type StartedGateway } from '../helpers/gateway.ts';
import { closeAllTabs, connectError, connectTab } from '../helpers/sockets.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');

/**
 * Series the alert rules may name that Prometheus itself makes, not the gateway: `up` for every scrape of a
 * node's /metrics, `probe_success` for the blackbox exporter's probe of its /readyz (docs/production.md).
 */
const MADE_BY_PROMETHEUS = new Set(['up', 'probe_success']);
/** Labels Prometheus adds to every series it scrapes. */
const TARGET_LABELS = ['job', 'instance'];

// ---- PromQL, as far as the names in it go ----

interface Selector {
  /** The metric name, as written (with its _bucket, _sum or _count). */
  name: string;
  /** The label names of its matchers. */
  labels: string[];
}

const NOT_METRICS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

/**
 * The metric selectors of a PromQL expression (Grafana's `$variables` allowed). Not a parser: it removes what
 * can hold words that are not metric names (strings, durations, grouping label lists) and then takes every
 * name that is not a keyword and not followed by `(` (a function or an aggregation).
 */
function selectorsOf(expr: string): Selector[] {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  e = e.replace(/\$\{?\w+\}?/g, '0');
  e = e.replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const found: Selector[] = [];
  // The look-behind keeps the unit of a number (the `h` of `offset 1h`, the `e3` of `1e3`) from counting as a name.
  const name = /(?<![\w:.])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?(\s*\()?/g;
  for (const m of e.matchAll(name)) {
    const [, word, matchers, call] = m;
    if (call || NOT_METRICS.has(word!)) continue;
    found.push({ name: word!, labels: [...(matchers ?? '').matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!) });
  }
  // A selector with no metric name (`{__name__=…}`) would escape the check: none is allowed.
  if (/\{/.test(e.replace(/[a-zA-Z_:][\w:]*\s*\{[^}]*\}/g, ''))) throw new Error(`a selector without a metric name in: ${expr}`);
  return found;
}

// ---- /metrics ----

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  /** Family name → type, from the `# TYPE` lines (present even for a labelled metric with no sample yet). */
  types: Map<string, string>;
  samples: Sample[];
}

function parseScrape(text: string): Scrape {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) continue;
    const labels = Object.fromEntries([...(sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return { types, samples };
}

/** The family a written name belongs to: itself, or the histogram or summary whose series it is. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const series = /^(.+)_(bucket|sum|count)$/.exec(name);
  const kind = series && types.get(series[1]!);
  return kind === 'histogram' || kind === 'summary' ? series![1] : undefined;
}

// ---- the files under test ----

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: Record<string, number>;
  datasource?: { type?: string; uid?: string };
  targets?: { refId?: string; expr?: string }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(read('deploy/grafana/chat-gateway.json')) as {
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
};
/** Every panel, those inside rows too (a collapsed row keeps its panels under its own `panels`). */
const panels: Panel[] = dashboard.panels.flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
const dashboardExprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr ?? '' })));

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const alertsText = read('deploy/prometheus/alerts.yml');
const ruleFile = parseYaml(alertsText) as { groups: { name: string; rules: Rule[] }[] };
const rules: Rule[] = (ruleFile?.groups ?? []).flatMap((g) => g.rules ?? []);

// ---- a real gateway, exercised a little ----

let gw: StartedGateway;
let scrape: Scrape;
/** Label names of each family, from the gateway's registry: /metrics shows a labelled metric's labels only once it has a sample. */
let labelNames: (family: string) => string[];

gatewayOnFreshDatabase(({ gateway }) => (gw = gateway), {
  ASSISTANT: 'echo',
  ASSISTANT_DELAY_MS: '1',
  REDIS_URL,
  REDIS_PREFIX: testRedisPrefix(),
});

beforeAll(async () => {
  const user = `dash-${randomUUID()}`;
  const tab = await connectTab(gw.url, gw.tokenFor(user));
  try {
    const { message } = await tab.ok('message:send', { content: 'hello metrics', clientMessageId: randomUUID() });
    const reply = await tab.replyStart(message.id);
    expect((await tab.replyEnd(reply.id)).content).toBe('Echo: hello metrics');
    expect((await api(gw.url, gw.tokenFor(user)).get('/api/conversations')).status).toBe(200);
    await connectError(gw.url, undefined);
    const res = await fetch(`${gw.url}/metrics`);
    expect(res.status).toBe(200);
    scrape = parseScrape(await res.text());
  } finally {
    closeAllTabs();
  }
  const registry = gw.gateway.metrics.registry;
  labelNames = (family) => {
    const metric = registry.getSingleMetric(family) as unknown as { labelNames?: readonly string[] } | undefined;
    return [...(metric?.labelNames ?? [])];
  };
});

/** What is wrong with one selector, or nothing. */
function problemWith(selector: Selector, allowPrometheusSeries: boolean): string | undefined {
  if (allowPrometheusSeries && MADE_BY_PROMETHEUS.has(selector.name)) return undefined;
  const family = familyOf(selector.name, scrape.types);
  if (!family) return `${selector.name} is not exported`;
  const known = new Set([...labelNames(family), 'node', ...TARGET_LABELS, ...(selector.name.endsWith('_bucket') ? ['le'] : [])]);
  const unknown = selector.labels.filter((l) => !known.has(l));
  return unknown.length ? `${selector.name} has no label ${unknown.join(', ')}` : undefined;
}

describe('the PromQL reader the checks rely on', () => {
  it('finds metric names and their matchers, not functions, keywords, durations or label values', () => {
    expect(
      selectorsOf(
        'histogram_quantile(0.99, sum by (node, le) (rate(chat_x_seconds_bucket{event="message:send", node=~"$node"}[$__rate_interval]))) > 0.5',
      ),
    ).toEqual([{ name: 'chat_x_seconds_bucket', labels: ['event', 'node'] }]);
    expect(
      selectorsOf('sum by (reason) (rate(a_total[5m])) unless avg_over_time(sum by (reason) (rate(b_total[5m]))[1d:5m] offset 1h) > 1e3'),
    ).toEqual([
      { name: 'a_total', labels: [] },
      { name: 'b_total', labels: [] },
    ]);
    expect(selectorsOf('count(g{route="/api/{id} (x) by"} == 0) or vector(0)')).toEqual([{ name: 'g', labels: ['route'] }]);
    expect(selectorsOf('up{job="chat-gateway"} == 0 and on (instance) probe_success')).toEqual([
      { name: 'up', labels: ['job'] },
      { name: 'probe_success', labels: [] },
    ]);
    expect(() => selectorsOf('sum(rate({__name__="x"}[5m]))')).toThrow(/without a metric name/);
  });
});

describe('the exercised gateway', () => {
  it('counted what it was made to do, so the names below are checked against live metrics', () => {
    const value = (name: string, labels: Record<string, string> = {}) =>
      scrape.samples
        .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0);
    expect(value('chat_socket_events_total', { event: 'message:send', outcome: 'ok' })).toBe(1);
    expect(value('chat_socket_ack_duration_seconds_count', { event: 'message:send' })).toBe(1);
    expect(value('chat_messages_persisted_total', { role: 'user' })).toBe(1);
    expect(value('chat_append_batches_total', { outcome: 'committed' })).toBeGreaterThanOrEqual(1);
    expect(value('chat_assistant_first_delta_seconds_count')).toBe(1);
    expect(value('chat_assistant_reply_seconds_count', { status: 'complete' })).toBe(1);
    expect(value('chat_http_requests_total', { route: '/api/conversations', status: '200' })).toBe(1);
    expect(value('chat_handshakes_refused_total', { reason: 'unauthorized' })).toBe(1);
    expect(scrape.samples.some((s) => s.name === 'chat_redis_connected')).toBe(true);
    expect(scrape.samples.some((s) => s.name === 'nodejs_eventloop_lag_p99_seconds')).toBe(true);
    // Every series carries the node's name, which the dashboard's node selector and the alerts group by.
    expect(scrape.samples.filter((s) => s.labels.node !== 'test-node')).toEqual([]);
  });
});

describe('deploy/grafana/chat-gateway.json', () => {
  it('is a dashboard whose panels each have at least one query, on the chosen Prometheus data source', () => {
    expect(panels.length).toBeGreaterThan(10);
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
    expect(dashboard.templating.list.find((v) => v.name === 'node')?.type).toBe('query');
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) {
      const where = `panel ${panel.id} "${panel.title}"`;
      expect(panel.title, where).toBeTruthy();
      expect(panel.gridPos, where).toMatchObject({
        h: expect.any(Number),
        w: expect.any(Number),
        x: expect.any(Number),
        y: expect.any(Number),
      });
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's reference to the dashboard's data source variable
      expect(panel.datasource, where).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, where).toBeGreaterThan(0);
      const refIds = panel.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, where).toBe(refIds.length);
      for (const target of panel.targets!) expect(selectorsOf(target.expr ?? '').length, `${where}: ${target.expr}`).toBeGreaterThan(0);
    }
  });

  it('queries only metrics and labels the gateway exports', () => {
    const problems = dashboardExprs.flatMap(({ where, expr }) =>
      selectorsOf(expr).flatMap((s) => {
        const problem = problemWith(s, false);
        return problem ? [`${where}: ${problem}`] : [];
      }),
    );
    expect(problems).toEqual([]);
  });

  it('shows every chat_ metric the gateway exports', () => {
    const shown = new Set(dashboardExprs.flatMap(({ expr }) => selectorsOf(expr).map((s) => familyOf(s.name, scrape.types))));
    const missing = [...scrape.types.keys()].filter((family) => family.startsWith('chat_') && !shown.has(family));
    expect(missing).toEqual([]);
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  it('is a Prometheus rule file: groups of alerting rules, each with expr, for, labels and annotations', () => {
    expect(Object.keys(ruleFile)).toEqual(['groups']);
    expect(ruleFile.groups.length).toBeGreaterThan(0);
    for (const group of ruleFile.groups) {
      expect(typeof group.name).toBe('string');
      expect(group.rules.length, group.name).toBeGreaterThan(0);
    }
    for (const rule of rules) {
      const where = rule.alert ?? JSON.stringify(rule);
      expect(Object.keys(rule).sort(), where).toEqual(['alert', 'annotations', 'expr', 'for', 'labels']);
      expect(rule.alert, where).toMatch(/^[A-Z][A-Za-z0-9]+$/);
      expect(typeof rule.expr, where).toBe('string');
      expect(rule.for, where).toMatch(/^(\d+(ms|s|m|h|d|w|y))+$/);
      expect(['critical', 'warning'], where).toContain(rule.labels.severity);
      expect(
        Object.values(rule.labels).every((v) => typeof v === 'string'),
        where,
      ).toBe(true);
      expect(typeof rule.annotations.summary, where).toBe('string');
      expect(typeof rule.annotations.description, where).toBe('string');
    }
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
  });

  it('has the alerts the operators are told about, each explained in docs/production.md', () => {
    const names = rules.map((r) => r.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'ChatGatewayNodeNotReady',
        'ChatGatewayRedisDegraded',
        'ChatGatewayAppendLatencyHigh',
        'ChatGatewayRateLimitedShareHigh',
        'ChatGatewayReplyFailures',
        'ChatGatewayHandshakesRefusedSpike',
        'ChatGatewayDatabaseErrors',
      ]),
    );
    const guide = read('docs/production.md');
    expect(names.filter((n) => !guide.includes(n))).toEqual([]);
  });

  it('names only metrics and labels the gateway exports (and the scrape and probe series of Prometheus)', () => {
    const problems = rules.flatMap((rule) =>
      selectorsOf(rule.expr).flatMap((s) => {
        const problem = problemWith(s, true);
        return problem ? [`${rule.alert}: ${problem}`] : [];
      }),
    );
    expect(problems).toEqual([]);
    // The Prometheus series are those of the jobs the guide configures, not of whatever else is scraped.
    for (const rule of rules) {
      for (const s of selectorsOf(rule.expr).filter((x) => MADE_BY_PROMETHEUS.has(x.name))) {
        expect(s.labels, `${rule.alert}: ${s.name}`).toContain('job');
      }
    }
  });
});
