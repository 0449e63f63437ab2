/** The subset of the API's fleet plan (`GET /v1/plan`, and a dry run's `plan`) that classification reads. */
export interface FleetPlanView {
  readonly nodes: readonly NodePlanView[];
}

export interface NodePlanView {
  readonly node: string;
  readonly latest: { readonly structuralHash: string } | null;
  readonly error?: string | null;
  readonly reload?: { readonly pending: boolean; readonly reasons?: readonly string[] };
}

/** How a change reaches the proxies: without a reload (Runtime API), with one, or not at all. */
export type ChangeClass = 'runtime' | 'reload' | 'none' | 'no-nodes' | 'unrenderable';

export interface Classification {
  readonly change: ChangeClass;
  /** Nodes that would reload, or that could not render the change. */
  readonly nodes: readonly string[];
  readonly error?: string;
}

/**
 * Classifies one dry-run write by comparing its plan with the plan before it (`baseline`): a node
 * whose structural hash moves needs a reload; a change that moves none goes out through the
 * Runtime API. Without a baseline, a node's pending reload is taken as this change's (exact when
 * the fleet was converged).
 */
export function classifyChange(baseline: FleetPlanView | null, after: FleetPlanView, changed: boolean): Classification {
  if (!changed) return { change: 'none', nodes: [] };
  if (after.nodes.length === 0) return { change: 'no-nodes', nodes: [] };
  const broken = after.nodes.filter((n) => n.latest === null);
  if (broken.length > 0) {
    return {
      change: 'unrenderable',
      nodes: broken.map((n) => n.node),
      error: broken[0]!.error ?? 'the configuration cannot be rendered',
    };
  }
  const reloading = after.nodes.filter((n) => {
    const before = baseline?.nodes.find((b) => b.node === n.node);
    if (baseline === null) return n.reload?.pending === true;
    // A node the baseline could not render (or did not know) reloads to take any working config.
    return before?.latest == null || before.latest.structuralHash !== n.latest!.structuralHash;
  });
  if (reloading.length > 0) return { change: 'reload', nodes: reloading.map((n) => n.node) };
  return { change: 'runtime', nodes: [] };
}

/** The words the plan prints after an action: `(runtime)`, `(reload)`. */
export function describeClassification(c: Classification, fleetSize: number): string {
  switch (c.change) {
    case 'runtime':
      return '(runtime)';
    case 'reload':
      return c.nodes.length === fleetSize ? '(reload)' : `(reload: ${c.nodes.join(', ')})`;
    case 'none':
      return '(the server sees no change)';
    case 'no-nodes':
      return '(no proxy nodes yet)';
    case 'unrenderable':
      return `(would not render on ${c.nodes.join(', ')}: ${c.error})`;
  }
}
