/**
 * The HTML report: one self-contained file (inline CSS and SVG drawn here; no script, no CDN, no fonts), so it can
 * be attached to a ticket or opened from an air-gapped cluster's bastion. Charts: latency over time (per-second
 * p50/p99 of ack and fan-out), latency distributions, latency by percentile, and throughput per second.
 */
import type { DistributionBucket, PercentilePoint } from './histograms.ts';
import { fmtInt, fmtMs, LATENCY_ROWS, type LatencyName, type LoadReport } from './report.ts';

const COLORS: Record<string, string> = {
  ack: '#2563eb',
  ackFromSchedule: '#60a5fa',
  fanout: '#16a34a',
  fanoutAll: '#65a30d',
  assistantFirstDelta: '#d97706',
  assistantComplete: '#dc2626',
  connect: '#7c3aed',
  schedulerLag: '#6b7280',
};

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

interface Series {
  name: string;
  color: string;
  values: (number | null)[];
  dashed?: boolean;
}

const W = 880;
const H = 300;
const M = { left: 64, right: 16, top: 16, bottom: 44 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

function niceStep(range: number, targetTicks: number): number {
  const raw = range / Math.max(1, targetTicks);
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

/** A y axis: linear from 0, or log10 over the decades the data spans. */
function yAxis(values: number[], log: boolean): { y: (v: number) => number; ticks: { v: number; label: string }[] } {
  const positive = values.filter((v) => v > 0);
  if (log && positive.length) {
    let lo = Math.floor(Math.log10(Math.min(...positive)));
    let hi = Math.ceil(Math.log10(Math.max(...positive)));
    if (hi === lo) hi = lo + 1;
    lo = Math.min(lo, hi - 1);
    const y = (v: number) => M.top + PH - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * PH;
    const ticks: { v: number; label: string }[] = [];
    for (let d = lo; d <= hi; d++) {
      for (const m of d === hi ? [1] : [1, 2, 5]) ticks.push({ v: m * 10 ** d, label: fmtTick(m * 10 ** d) });
    }
    return { y, ticks };
  }
  const max = Math.max(1e-9, ...values);
  const step = niceStep(max, 5);
  const top = Math.ceil(max / step) * step;
  const y = (v: number) => M.top + PH - (v / top) * PH;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push({ v, label: fmtTick(v) });
  return { y, ticks };
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  if (v >= 1000) return fmtInt(v);
  if (v >= 1) return String(Math.round(v * 100) / 100);
  return String(Number(v.toPrecision(2)));
}

function frame(
  yTicks: { v: number; label: string }[],
  y: (v: number) => number,
  xTicks: { x: number; label: string }[],
  xLabel: string,
  yLabel: string,
): string {
  const parts: string[] = [];
  for (const t of yTicks) {
    const py = y(t.v).toFixed(1);
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py}" y2="${py}" class="grid"/>`);
    parts.push(`<text x="${M.left - 6}" y="${py}" class="tick" text-anchor="end" dominant-baseline="middle">${esc(t.label)}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line x1="${t.x.toFixed(1)}" x2="${t.x.toFixed(1)}" y1="${M.top + PH}" y2="${M.top + PH + 4}" class="axis"/>`);
    parts.push(`<text x="${t.x.toFixed(1)}" y="${M.top + PH + 16}" class="tick" text-anchor="middle">${esc(t.label)}</text>`);
  }
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + PH}" y2="${M.top + PH}" class="axis"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + PH}" class="axis"/>`);
  parts.push(`<text x="${M.left + PW / 2}" y="${H - 6}" class="label" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${M.top + PH / 2}) rotate(-90)" class="label" text-anchor="middle">${esc(yLabel)}</text>`);
  return parts.join('');
}

function legend(series: { name: string; color: string; dashed?: boolean }[]): string {
  return `<div class="legend">${series
    .map(
      (s) =>
        `<span><svg width="22" height="10"><line x1="0" x2="22" y1="5" y2="5" stroke="${s.color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/></svg>${esc(s.name)}</span>`,
    )
    .join('')}</div>`;
}

/** Lines over the seconds of the run; nulls break a line. */
export function lineChart(x: number[], series: Series[], opts: { xLabel: string; yLabel: string; log?: boolean; unit?: string }): string {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  if (!all.length || x.length === 0) return '<p class="empty">no data</p>';
  const { y, ticks } = yAxis(all, opts.log ?? false);
  const x0 = x[0]!;
  const x1 = Math.max(x[x.length - 1]!, x0 + 1);
  const px = (v: number) => M.left + ((v - x0) / (x1 - x0)) * PW;
  const step = niceStep(x1 - x0, 10);
  const xTicks = [];
  for (let v = Math.ceil(x0 / step) * step; v <= x1; v += step) xTicks.push({ x: px(v), label: String(v) });
  const lines = series
    .map((s) => {
      const segments: string[] = [];
      let current: string[] = [];
      s.values.forEach((v, i) => {
        if (v === null || (opts.log && v <= 0)) {
          if (current.length) segments.push(current.join(' '));
          current = [];
          return;
        }
        current.push(`${px(x[i]!).toFixed(1)},${y(v).toFixed(1)}`);
      });
      if (current.length) segments.push(current.join(' '));
      const dots =
        s.values.length < 120
          ? s.values
              .map((v, i) =>
                v === null || (opts.log && v <= 0)
                  ? ''
                  : `<circle cx="${px(x[i]!).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2" fill="${s.color}"><title>${esc(`${s.name} at ${x[i]} s: ${fmtTick(v)}${opts.unit ?? ''}`)}</title></circle>`,
              )
              .join('')
          : '';
      return (
        segments
          .map(
            (pts) =>
              `<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
          )
          .join('') + dots
      );
    })
    .join('');
  return `<svg viewBox="0 0 ${W} ${H}" class="chart" role="img">${frame(ticks, y, xTicks, opts.xLabel, opts.yLabel)}${lines}</svg>${legend(series)}`;
}

/** Latency distributions on a log time axis: share of samples per bucket, one outlined area per metric. */
export function distributionChart(items: { name: string; color: string; buckets: DistributionBucket[] }[]): string {
  const present = items.filter((i) => i.buckets.length);
  if (!present.length) return '<p class="empty">no data</p>';
  const lo = Math.floor(Math.log10(Math.min(...present.map((i) => i.buckets[0]!.fromMs))));
  const hi = Math.ceil(Math.log10(Math.max(...present.map((i) => i.buckets[i.buckets.length - 1]!.toMs))));
  const span = Math.max(1, hi - lo);
  const px = (ms: number) => M.left + ((Math.log10(ms) - lo) / span) * PW;
  const shares = present.map((i) => {
    const total = i.buckets.reduce((a, b) => a + b.count, 0) || 1;
    return i.buckets.map((b) => ({ ...b, share: (b.count / total) * 100 }));
  });
  const { y, ticks } = yAxis(
    shares.flatMap((s) => s.map((b) => b.share)),
    false,
  );
  const xTicks = [];
  for (let d = lo; d <= lo + span; d++)
    for (const m of d === lo + span ? [1] : [1, 2, 5]) xTicks.push({ x: px(m * 10 ** d), label: fmtTick(m * 10 ** d) });
  const paths = present
    .map((item, idx) => {
      const pts: string[] = [`${px(shares[idx]![0]!.fromMs).toFixed(1)},${y(0).toFixed(1)}`];
      const bars: string[] = [];
      for (const b of shares[idx]!) {
        pts.push(`${px(b.fromMs).toFixed(1)},${y(b.share).toFixed(1)}`, `${px(b.toMs).toFixed(1)},${y(b.share).toFixed(1)}`);
        if (b.count > 0) {
          bars.push(
            `<rect x="${px(b.fromMs).toFixed(1)}" y="${y(b.share).toFixed(1)}" width="${Math.max(0.5, px(b.toMs) - px(b.fromMs)).toFixed(1)}" height="${(y(0) - y(b.share)).toFixed(1)}" fill="transparent"><title>${esc(`${item.name}: ${fmtMs(b.fromMs)}–${fmtMs(b.toMs)} ms: ${fmtInt(b.count)} (${b.share.toFixed(2)} %)`)}</title></rect>`,
          );
        }
      }
      pts.push(`${px(shares[idx]![shares[idx]!.length - 1]!.toMs).toFixed(1)},${y(0).toFixed(1)}`);
      return `<polygon points="${pts.join(' ')}" fill="${item.color}" fill-opacity="0.18" stroke="${item.color}" stroke-width="1.5"/>${bars.join('')}`;
    })
    .join('');
  return `<svg viewBox="0 0 ${W} ${H}" class="chart" role="img">${frame(ticks, y, xTicks, 'latency (ms, log scale)', '% of samples')}${paths}</svg>${legend(present)}`;
}

/** Latency by percentile: x is the number of nines (90 → 1, 99 → 2, 99.9 → 3), y log ms. */
export function percentileChart(items: { name: string; color: string; points: PercentilePoint[] }[]): string {
  const present = items.filter((i) => i.points.length);
  if (!present.length) return '<p class="empty">no data</p>';
  const nines = (p: number) => (p >= 100 ? 4.5 : -Math.log10(1 - p / 100));
  const maxX = 4.5;
  const px = (p: number) => M.left + (Math.min(nines(p), maxX) / maxX) * PW;
  const { y, ticks } = yAxis(
    present.flatMap((i) => i.points.map((p) => p.ms)),
    true,
  );
  const xTicks = [0, 50, 90, 99, 99.9, 99.99, 100].map((p) => ({ x: px(p), label: p === 100 ? 'max' : `p${p}` }));
  const lines = present
    .map((i) => {
      const pts = i.points.map((p) => `${px(p.percentile).toFixed(1)},${y(Math.max(p.ms, 1e-3)).toFixed(1)}`).join(' ');
      const dots = i.points
        .map(
          (p) =>
            `<circle cx="${px(p.percentile).toFixed(1)}" cy="${y(Math.max(p.ms, 1e-3)).toFixed(1)}" r="2.5" fill="${i.color}"><title>${esc(`${i.name} p${p.percentile}: ${fmtMs(p.ms)} ms`)}</title></circle>`,
        )
        .join('');
      return `<polyline points="${pts}" fill="none" stroke="${i.color}" stroke-width="1.8"/>${dots}`;
    })
    .join('');
  return `<svg viewBox="0 0 ${W} ${H}" class="chart" role="img">${frame(ticks, y, xTicks, 'percentile', 'latency (ms, log scale)')}${lines}</svg>${legend(present)}`;
}

function latencyTable(r: LoadReport): string {
  const rows = LATENCY_ROWS.filter(([key]) => r.latency[key].count > 0 && !(key === 'fanoutAll' && r.options.tabs < 3))
    .map(([key, label]) => {
      const s = r.latency[key];
      return `<tr><td><span class="swatch" style="background:${COLORS[key]}"></span>${esc(label)}</td><td>${fmtInt(s.count)}</td><td>${fmtMs(s.p50Ms)}</td><td>${fmtMs(s.p95Ms)}</td><td>${fmtMs(s.p99Ms)}</td><td>${fmtMs(s.maxMs)}</td><td>${fmtMs(s.meanMs)}</td></tr>`;
    })
    .join('');
  return `<table class="num"><thead><tr><th>latency (ms)</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>mean</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function kv(rows: [string, string][]): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</table>`;
}

export function renderHtml(r: LoadReport): string {
  const o = r.options;
  const v = r.verification;
  const c = r.counts;
  const t = r.throughput;
  const s = r.series;
  const metricSeries = (names: LatencyName[]) =>
    names.map((n) => ({ name: LATENCY_ROWS.find(([k]) => k === n)![1], color: COLORS[n]!, n }));
  const distNames: LatencyName[] = ['ack', 'fanout', 'assistantFirstDelta', 'assistantComplete'];
  const errors = Object.entries(r.errorsByCode);
  const problems = v.problems.slice(0, 500);
  const cv = r.convergence;
  const status = cv
    ? `<div class="badge ${v.ok ? 'ok' : 'fail'}">${v.ok ? 'CONVERGED' : cv.notConverged > 0 ? 'NOT CONVERGED' : 'FAILED'}</div><p>${fmtInt(cv.converged)} of ${fmtInt(cv.observerTabs)} observer tabs (${cv.perUser} per user) match what is stored (messages: ids, seq order, content, status; conversation list)${cv.afterLoadMs ? `, after the load stopped in ${fmtMs(cv.afterLoadMs.median)} ms median, ${fmtMs(cv.afterLoadMs.max)} ms max` : ''}. Lost (acked, not stored): ${fmtInt(v.problemCounts['stored-missing'] ?? 0)} · stored twice: ${fmtInt(v.problemCounts['stored-duplicate'] ?? 0)} · replies not final: ${fmtInt(v.problemCounts['reply-not-final'] ?? 0)}.${
        v.ok
          ? ''
          : ` ${fmtInt(v.totalProblems)} problem(s): ${Object.entries(v.problemCounts)
              .map(([k, n]) => `<code>${esc(k)}</code> ${fmtInt(n!)}`)
              .join(' · ')}`
      }</p>`
    : v.ok
      ? `<div class="badge ok">VERIFIED</div><p>${fmtInt(v.checked.acked)} acknowledged messages, each received exactly once by every one of the ${o.tabs} tabs of its user and stored exactly once, in ${fmtInt(v.checked.conversations)} conversations with gap-free seqs${o.assistant ? `; ${fmtInt(v.checked.replies)} assistant replies seen start to end by every tab` : ''}.</p>`
      : `<div class="badge fail">FAILED</div><p>${fmtInt(v.totalProblems)} problem(s): ${Object.entries(v.problemCounts)
          .map(([k, n]) => `<code>${esc(k)}</code> ${fmtInt(n!)}`)
          .join(' · ')}</p>`;

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Load test ${esc(r.runId)} — ${v.ok ? (cv ? 'converged' : 'verified') : 'FAILED'}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;max-width:960px;margin:24px auto;padding:0 16px;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.sub{color:#4b5563;margin:0 0 12px}code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #f0f0f0;text-align:left;vertical-align:top}
table.num td:not(:first-child),table.num th:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
table.kv th{font-weight:500;color:#4b5563;white-space:nowrap}
.badge{display:inline-block;font-weight:700;padding:4px 12px;border-radius:4px;color:#fff;margin:6px 0}.ok{background:#16a34a}.fail{background:#dc2626}
.chart{width:100%;height:auto;display:block}.chart .grid{stroke:#eef0f3}.chart .axis{stroke:#9ca3af}.chart .tick{font-size:11px;fill:#4b5563}.chart .label{font-size:12px;fill:#374151}
.legend{display:flex;gap:16px;flex-wrap:wrap;font-size:12px;color:#374151;margin:2px 0 10px 64px}.legend span{display:inline-flex;align-items:center;gap:4px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}.empty{color:#6b7280}
.note{background:#fffbeb;border-left:3px solid #f59e0b;padding:6px 10px;margin:6px 0}
.problems td{font-size:12px}.problems td:first-child{white-space:nowrap}table.kv code{word-break:break-all}
</style></head><body>
<h1>Chat gateway load test <code>${esc(r.runId)}</code></h1>
<p class="sub">${esc(r.startedAt)} → ${esc(r.finishedAt)} · ${o.urls.length} node(s): ${o.urls.map((u) => `<code>${esc(u)}</code>`).join(' ')}<br>
${fmtInt(o.users)} users × ${o.tabs} tabs · offered ${fmtInt(o.rate)} msg/s, ramp ${o.rampS} s, ${o.durationS} s · ${o.size} chars · assistant ${o.assistant ? 'measured' : 'not measured'} · transports ${esc(o.transports.join(','))}</p>
${status}
${r.notes.map((n) => `<div class="note">${esc(n)}</div>`).join('')}

<h2>Latency</h2>
${latencyTable(r)}
<p class="sub">Ack: emit of <code>message:send</code> → its acknowledgement at the sending tab. Fan-out: emit → <code>message:created</code> at each other tab of the same user (the sender's own copy counts as a receipt, not as fan-out); "all other tabs": → the last of them. Assistant: emit → first <code>message:delta</code> / final <code>message:updated</code> of the reply at the sending tab. Ack from schedule: the same, timed from when the open-loop schedule wanted the message sent, so a generator that fell behind cannot hide latency (coordinated omission). Scheduler lag: how late the generator emitted against the schedule.</p>

<h2>Latency over time</h2>
${lineChart(
  s.second,
  [
    { name: 'ack p50', color: COLORS.ack!, values: s.ackP50 },
    { name: 'ack p99', color: COLORS.ack!, values: s.ackP99, dashed: true },
    { name: 'fan-out p50', color: COLORS.fanout!, values: s.fanoutP50 },
    { name: 'fan-out p99', color: COLORS.fanout!, values: s.fanoutP99, dashed: true },
  ],
  { xLabel: 'second of the run (by send time)', yLabel: 'ms (log scale)', log: true, unit: ' ms' },
)}

<h2>Throughput</h2>
${lineChart(
  s.second,
  [
    { name: 'offered', color: '#9ca3af', values: s.offered, dashed: true },
    { name: 'sent', color: '#7c3aed', values: s.sent },
    { name: 'acked', color: COLORS.ack!, values: s.acked },
    {
      name: `received (receipts ÷ ${o.tabs} tabs)`,
      color: COLORS.fanout!,
      values: s.received.map((x) => Math.round((x / o.tabs) * 10) / 10),
    },
    { name: 'errors', color: '#dc2626', values: s.errors },
  ],
  { xLabel: 'second of the run', yLabel: 'messages per second', unit: '/s' },
)}
${kv([
  ['offered', `${fmtInt(c.scheduled)} messages over ${t.sendWindowS} s (peak ${fmtInt(t.offeredPeakPerS)}/s)`],
  [
    'achieved',
    `sent ${fmtInt(t.sentPerS)}/s · acked ${fmtInt(t.ackedPerS)}/s · receipts ${fmtInt(t.receiptsPerS)}/s${t.steadyAckedPerS !== null ? ` · after the ramp: acked ${fmtInt(t.steadyAckedPerS)}/s of ${fmtInt(t.steadyOfferedPerS ?? 0)}/s offered` : ''}`,
  ],
  [
    'messages',
    `sent ${fmtInt(c.sent)} · acked ${fmtInt(c.acked)} · refused ${fmtInt(c.refused)} · no answer ${fmtInt(c.unknown)} · not sent ${fmtInt(c.notSent)}${o.assistant ? ` · replies ${fmtInt(c.replies)}` : ''}`,
  ],
  ['receipts', `${fmtInt(c.receipts)} · duplicates ${fmtInt(c.duplicateReceipts)} · of other clients ${fmtInt(c.foreignReceipts)}`],
  ['errors', errors.length ? errors.map(([code, n]) => `<code>${esc(code)}</code> ${fmtInt(n)}`).join(' · ') : 'none'],
  [
    'connections',
    `${fmtInt(r.connections.tabs)} tabs · ${fmtInt(r.connections.disconnects)} disconnects ${esc(JSON.stringify(r.connections.disconnectReasons))} · ${fmtInt(r.connections.reconnects)} reconnects`,
  ],
])}

<h2>Latency distribution</h2>
${distributionChart(metricSeries(distNames).map((m) => ({ name: m.name, color: m.color, buckets: r.distributions[m.n] ?? [] })))}

<h2>Latency by percentile</h2>
${percentileChart(metricSeries(distNames).map((m) => ({ name: m.name, color: m.color, points: r.percentiles[m.n] ?? [] })))}

<h2>Verification</h2>
${kv([
  [
    'sends',
    `${fmtInt(v.checked.sent)} (acked ${fmtInt(v.checked.acked)}, refused ${fmtInt(v.checked.refused)}, no answer ${fmtInt(v.checked.unknown)} of which stored ${fmtInt(v.checked.unknownStored)})`,
  ],
  cv
    ? [
        'receipts (not judged)',
        `${fmtInt(v.checked.liveReceiptsMissed)} missed and ${fmtInt(v.checked.liveReceiptsDuplicated)} duplicated by the ${fmtInt(v.checked.tabs)} load tabs`,
      ]
    : ['receipts checked', `${fmtInt(v.checked.receiptsExpected)} over ${fmtInt(v.checked.tabs)} tabs`],
  ...(cv
    ? ([
        [
          'convergence',
          `${fmtInt(cv.converged)} of ${fmtInt(cv.observerTabs)} observer tabs${cv.afterLoadMs ? ` · median ${fmtMs(cv.afterLoadMs.median)} ms, max ${fmtMs(cv.afterLoadMs.max)} ms after the load stopped` : ''} · waited ${fmtMs(cv.waitedMs)} ms (bound ${cv.timeoutS} s), ${fmtInt(cv.rounds)} rounds`,
        ],
        [
          'observer tabs',
          `${fmtInt(cv.disconnects)} disconnects · ${fmtInt(cv.reconnects)} reconnects · ${fmtInt(cv.sdkErrors)} SDK errors${cv.firstSdkErrors.length ? ` (first: ${esc(cv.firstSdkErrors[0]!)})` : ''}`,
        ],
        [
          'stored replies',
          Object.entries(v.checked.repliesByStatus)
            .map(([k, n]) => `${esc(k)} ${fmtInt(n)}`)
            .join(' · ') || 'none',
        ],
      ] as [string, string][])
    : []),
  ['storage checked', `${fmtInt(v.checked.conversations)} conversations, ${fmtInt(v.checked.storedMessages)} stored messages`],
  [
    'problems',
    v.totalProblems
      ? Object.entries(v.problemCounts)
          .map(([k, n]) => `<code>${esc(k)}</code> ${fmtInt(n!)}`)
          .join(' · ')
      : 'none',
  ],
])}
${
  problems.length
    ? `<table class="problems"><thead><tr><th>kind</th><th>user</th><th>clientMessageId</th><th>seq</th><th>tab</th><th>detail</th></tr></thead><tbody>${problems
        .map(
          (p) =>
            `<tr><td><code>${esc(p.kind)}</code></td><td>${esc(p.userId)}</td><td>${esc(p.clientMessageId ?? '')}</td><td>${p.seq ?? ''}</td><td>${p.tab ?? (p.observer !== undefined ? `observer ${p.observer}` : '')}</td><td>${esc(p.detail)}</td></tr>`,
        )
        .join(
          '',
        )}</tbody></table>${v.totalProblems > problems.length ? `<p>… ${fmtInt(v.totalProblems - problems.length)} more in the JSON report.</p>` : ''}`
    : ''
}

<h2>Run</h2>
${kv([
  [
    'phases',
    `connect ${r.phases.connectS} s · conversations ${r.phases.conversationsS} s${cv ? ` · observers ${r.phases.observeS} s` : ''} · send ${r.phases.sendS} s · drain ${r.phases.drainS} s${cv ? ` · converge ${r.phases.convergeS} s` : ''} · verify ${r.phases.verifyS} s`,
  ],
  [
    'generator',
    `CPU ${r.generator.cpuPercentOfOneCore} % of one core · event-loop delay p99 ${r.generator.eventLoopDelayP99Ms} ms, max ${r.generator.eventLoopDelayMaxMs} ms · max RSS ${fmtInt(r.generator.maxRssMB)} MB`,
  ],
  [
    'environment',
    `${esc(r.environment.host)} · Node ${esc(r.environment.node)} · ${r.environment.cpus} CPUs · load ${r.environment.loadavg.join(' ')}`,
  ],
  ['options', `<code>${esc(JSON.stringify(o))}</code>`],
])}
</body></html>
`;
}
