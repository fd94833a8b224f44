#!/bin/sh
# Checks the alert rules and the dashboard's queries with Prometheus's own promtool (Debian: apt-get install
# prometheus): that the rules load, that each alert fires, and stays quiet, on the made-up series of
# alerts.test.yml, and that every query of deploy/grafana/chat-gateway.json is valid PromQL.
# test/ops/dashboards.test.ts checks the metric names against a running gateway, without promtool.
set -eu
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not found: install Prometheus's tools (Debian: apt-get install prometheus)" >&2
  exit 1
fi
promtool check rules alerts.yml
promtool test rules alerts.test.yml

# The dashboard's queries, as recording rules: promtool parses them. Grafana's variables are given values first.
queries=$(mktemp --suffix=.yml)
trap 'rm -f "$queries"' EXIT
node -e '
  const d = require(process.argv[1]);
  const exprs = d.panels.flatMap((p) => (p.targets || []).map((t) => t.expr));
  const rules = exprs.map((e, i) => {
    const expr = e.replaceAll("$__rate_interval", "5m").replaceAll("$node", ".*");
    return `      - record: dashboard_query_${i}\n        expr: ${JSON.stringify(expr)}`;
  });
  console.log(`groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}`);
' "$(pwd)/../grafana/chat-gateway.json" > "$queries"
promtool check rules "$queries"
