/**
 * Checks PromQL expressions (alert rules, dashboard panels) against a real Prometheus text scrape: every metric an
 * expression selects must have samples, and every label it matches on or groups by must be on those samples. The
 * expression is parsed by Prometheus' own lezer grammar, so a syntax error is a problem too.
 */
import type { SyntaxNode } from "@lezer/common";
import { parser } from "@prometheus-io/lezer-promql";

/** Metric name → the label names seen on its samples. */
export type Scrape = ReadonlyMap<string, ReadonlySet<string>>;

/** Parses Prometheus text exposition; comments (`# HELP`, `# TYPE`) do not count, only samples. */
export function parseScrape(text: string): Scrape {
  const metrics = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+/.exec(line);
    if (!match?.[1]) continue;
    const labels = metrics.get(match[1]) ?? new Set<string>();
    for (const pair of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g))
      if (pair[1]) labels.add(pair[1]);
    metrics.set(match[1], labels);
  }
  return metrics;
}

function children(node: SyntaxNode, name: string): SyntaxNode[] {
  const found: SyntaxNode[] = [];
  for (let child = node.firstChild; child; child = child.nextSibling)
    if (child.name === name) found.push(child);
  return found;
}

function descendants(node: SyntaxNode, name: string): SyntaxNode[] {
  const found: SyntaxNode[] = [];
  const cursor = node.cursor();
  do {
    if (cursor.name === name) found.push(cursor.node);
  } while (cursor.next() && cursor.from < node.to);
  return found.filter((n) => n.from >= node.from && n.to <= node.to);
}

/** Why `expr` does not fit `scrape`, one line per problem; empty when it does. */
export function promqlProblems(expr: string, scrape: Scrape): string[] {
  const problems: string[] = [];
  const tree = parser.parse(expr);
  const text = (node: SyntaxNode) => expr.slice(node.from, node.to);
  tree.iterate({
    enter: (node) => {
      if (node.type.isError)
        problems.push(
          `syntax error at ${node.from}: ${JSON.stringify(expr.slice(node.from, node.from + 20))}`,
        );
    },
  });
  const metricsUnder = (node: SyntaxNode) =>
    descendants(node, "VectorSelector").map((s) => text(children(s, "Identifier")[0] ?? s));
  const need = (metric: string, label: string, why: string) => {
    const labels = scrape.get(metric);
    if (labels && !labels.has(label)) problems.push(`${metric} has no label ${label} (${why})`);
  };
  for (const selector of descendants(tree.topNode, "VectorSelector")) {
    const identifier = children(selector, "Identifier")[0];
    if (!identifier) {
      problems.push(`selector without a metric name: ${text(selector)}`);
      continue;
    }
    const metric = text(identifier);
    if (!scrape.has(metric)) {
      problems.push(`${metric} has no samples in /metrics`);
      continue;
    }
    for (const matcher of descendants(selector, "UnquotedLabelMatcher")) {
      const label = children(matcher, "LabelName")[0];
      if (label) need(metric, text(label), `matched in ${text(selector)}`);
    }
  }
  // `by (…)` must name labels of what is aggregated; `on (…)` labels of both operands.
  for (const aggregate of descendants(tree.topNode, "AggregateExpr")) {
    const modifier = children(aggregate, "AggregateModifier")[0];
    if (!modifier || children(modifier, "By").length === 0) continue;
    const body = children(aggregate, "FunctionCallBody")[0];
    const labels = descendants(modifier, "LabelName").map(text);
    for (const metric of body ? metricsUnder(body) : [])
      for (const label of labels) need(metric, label, `grouped by in ${text(aggregate).slice(0, 60)}`);
  }
  for (const clause of descendants(tree.topNode, "MatchingModifierClause")) {
    if (children(clause, "On").length === 0 || !clause.parent) continue;
    for (const metric of metricsUnder(clause.parent))
      for (const label of descendants(clause, "LabelName").map(text)) need(metric, label, "matched on");
  }
  return problems;
}
