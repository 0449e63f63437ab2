import { UpstreamError } from '../../domain/errors.js';
import type { SegmentedFiles } from '../../domain/snapshot.js';
import type { HeldTenant } from '../../db/config-repository.js';
import type { TenantState } from '../../db/desired-state-repository.js';
import type { RenderAttempt, Verdict } from './kind-renderer.js';
import type { RenderStates } from './render-state-cache.js';

/** A tenant's current state and its hash (TenantMemo.hash). */
export interface HashedState {
  readonly state: TenantState;
  readonly hash: string;
}

/** What planning asks of the node's renderer, its validator and the last good states (the caller's I/O). */
export interface ServedStatesPorts {
  /** The whole node rendered with these states. */
  render(states: TenantState[]): RenderAttempt;
  /** Renders and runs the real binary; a render-time refusal is a failed validation with its message. */
  validate(states: TenantState[]): Promise<Verdict>;
  /** The last validated states (for the node's kind) of those of these tenants that have one. */
  goodStates(tenants: readonly string[]): Promise<Map<string, TenantState>>;
  /** A state's structure as comparable text (TenantMemo.structure). */
  structure(state: TenantState): string;
}

export interface ServedStatesInput {
  /** Every tenant the node serves, at its current state. */
  readonly current: readonly HashedState[];
  /**
   * Those of `current` that may differ from their render state (at least every one that does),
   * when the caller keeps track; otherwise each tenant is looked up.
   */
  readonly mayDiffer?: readonly HashedState[] | undefined;
  /** The kind's render states: each tenant's last validated hash and revision. */
  readonly known: RenderStates;
  /** Validate the whole node, not only the changed tenants: its settings changed since they last validated (or a start). */
  readonly whole: boolean;
  /**
   * HAProxy: a change the Runtime API makes live (a tenant whose structure equals its last
   * validated state's) needs no binary run.
   */
  readonly runtimeChangesNeedNoBinary: boolean;
}

export interface ServedStatesPlan {
  readonly served: TenantState[];
  /** Changed tenants whose current state validated: recorded as their new good state. */
  readonly good: HashedState[];
  readonly held: HeldTenant[];
  /** The whole node's files, when it serves every tenant at its current state. */
  readonly segments?: SegmentedFiles | undefined;
  /** The node's settings validated with its whole file: later builds need validate only what changed. */
  readonly settingsValidated: boolean;
}

/** Longest validator message kept with a held tenant. */
const MAX_ERROR_CHARS = 4000;

/**
 * Decides which state of each tenant to serve. The fast path validates only the tenants whose
 * state changed since it last validated for this kind (none: no binary runs at all), with the
 * node's global sections; the whole node is rendered too, which catches what involves two
 * tenants (a shared listener) at the cost of the changed tenants' fragments. The whole file is
 * validated only when `whole` says so. When the check fails, each changed tenant is validated
 * alone to find the culprits, which are held at their last good state (left out when they have
 * none); if the mix still fails (an interaction), every changed tenant is held. Throws
 * UpstreamError when even the last good states do not validate.
 */
export async function planServedStates(input: ServedStatesInput, ports: ServedStatesPorts): Promise<ServedStatesPlan> {
  const { current, known, whole } = input;
  const changed = (input.mayDiffer ?? current).filter((c) => known.get(c.state.tenant.id)?.goodHash !== c.hash);
  const everyone = current.map((c) => c.state);
  // The whole node rendered once: it catches what involves two tenants (a shared listener), and
  // when nobody is held it is the build's output.
  const rendered = ports.render(everyone);
  const toCheck = whole ? current : await needingTheBinary(input, changed, ports);
  const first = !rendered.ok
    ? rendered
    : toCheck.length === 0
      ? rendered
      : await ports.validate(toCheck.map((c) => c.state));
  if (first.ok)
    return {
      served: everyone,
      good: changed,
      held: [],
      segments: rendered.ok ? rendered.segments : undefined,
      settingsValidated: whole,
    };

  const suspects = changed.length > 0 ? changed : current;
  const culprits = new Map<string, string>();
  for (const s of suspects) {
    const alone = await ports.validate([s.state]);
    if (!alone.ok) culprits.set(s.state.tenant.id, alone.message);
  }
  if (culprits.size === 0) for (const s of suspects) culprits.set(s.state.tenant.id, first.message);

  const mix = async (blame: Map<string, string>) => {
    const goods = await ports.goodStates([...blame.keys()]);
    const served: TenantState[] = [];
    const held: HeldTenant[] = [];
    for (const c of current) {
      const id = c.state.tenant.id;
      const error = blame.get(id);
      if (error === undefined) {
        served.push(c.state);
        continue;
      }
      const good = goods.get(id);
      if (good !== undefined) served.push(good);
      held.push({
        tenant: id,
        error: truncate(error),
        servingRevision: good === undefined ? null : (known.get(id)?.goodRevision ?? null),
      });
    }
    return { served, held };
  };
  let result = await mix(culprits);
  const verdict = await ports.validate(result.served);
  if (!verdict.ok) {
    for (const s of suspects) if (!culprits.has(s.state.tenant.id)) culprits.set(s.state.tenant.id, verdict.message);
    result = await mix(culprits);
    const last = await ports.validate(result.served);
    if (!last.ok)
      throw new UpstreamError(`even the last good configuration does not validate: ${truncate(last.message)}`);
  }
  return { ...result, good: changed.filter((c) => !culprits.has(c.state.tenant.id)), settingsValidated: true };
}

/**
 * The changed tenants the binary must see. On HAProxy, a tenant whose structure equals its last
 * validated state's changed only in what the Runtime API sets live (weights, member states and
 * addresses, caps: values the API schemas and the render guard check): the reconciler has pushed
 * it to the proxies without a check, and `haproxy -c` would prove nothing more. Anything
 * structural, and every NGINX change, goes through the binary.
 */
async function needingTheBinary(
  input: ServedStatesInput,
  changed: HashedState[],
  ports: ServedStatesPorts,
): Promise<HashedState[]> {
  if (!input.runtimeChangesNeedNoBinary || changed.length === 0) return changed;
  const goods = await ports.goodStates(changed.map((c) => c.state.tenant.id));
  return changed.filter((c) => {
    const good = goods.get(c.state.tenant.id);
    return good === undefined || ports.structure(good) !== ports.structure(c.state);
  });
}

function truncate(message: string, max = MAX_ERROR_CHARS): string {
  return message.length > max ? `${message.slice(0, max)}…` : message;
}
