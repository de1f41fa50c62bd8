// Reading Postgres plans in tests: parameters as literals for EXECUTE, and the nodes of EXPLAIN (FORMAT JSON).
import pg from 'pg';

/** `value` as an SQL literal of unknown type, as the pg driver would send it as a bind parameter. */
export function literal(value: unknown): string {
  const text = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));
  if (value === null) return 'NULL';
  if (Array.isArray(value))
    return pg.escapeLiteral(`{${value.map((x) => JSON.stringify(text(x))).join(',')}}`);
  return pg.escapeLiteral(text(value));
}

export type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

/** The first node of an EXPLAIN (FORMAT JSON) plan, depth first, that `match` accepts. */
export function findNode(node: PlanNode, match: (node: PlanNode) => boolean): PlanNode | undefined {
  if (match(node)) return node;
  for (const child of node.Plans ?? []) {
    const found = findNode(child, match);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * From an EXPLAIN (ANALYZE, FORMAT JSON) plan: the most rows any one scan of `relation` read, returned or
 * filtered out, over all its loops.
 */
export function mostRowsRead(node: PlanNode, relation: string): number {
  const own =
    node['Relation Name'] === relation
      ? ((node['Actual Rows'] as number) + ((node['Rows Removed by Filter'] as number | undefined) ?? 0)) *
        (node['Actual Loops'] as number)
      : 0;
  return Math.max(own, ...(node.Plans ?? []).map((child) => mostRowsRead(child, relation)));
}
