import { describe, expect, it } from 'vitest';
import type { RenderStateSummary } from '../../../../src/db/config-repository.js';
import type { TenantState } from '../../../../src/db/desired-state-repository.js';
import { UpstreamError } from '../../../../src/domain/errors.js';
import type { Verdict } from '../../../../src/services/config/kind-renderer.js';
import {
  planServedStates,
  type HashedState,
  type ServedStatesInput,
  type ServedStatesPorts,
} from '../../../../src/services/config/plan-served-states.js';

/** A tenant state reduced to what planning looks at: its id, a version label and its structure. */
interface Fake {
  readonly tenant: { readonly id: string };
  readonly version: string;
  readonly structure: string;
}
const state = (id: string, version: string, structure = version): TenantState =>
  ({ tenant: { id }, version, structure }) as unknown as TenantState;
const label = (s: TenantState) => `${s.tenant.id}@${(s as unknown as Fake).version}`;
const hashed = (s: TenantState): HashedState => ({ state: s, hash: label(s) });
const known = (
  id: string,
  goodVersion: string | null,
  goodRevision: number | null = 1,
): [string, RenderStateSummary] => [
  id,
  { tenantId: id, goodHash: goodVersion === null ? null : `${id}@${goodVersion}`, goodRevision, error: null },
];

/**
 * Ports over fake tenants: the renderer refuses and the validator rejects what `refuses` and
 * `rejects` say (a message, or null), last good states come from `goods`; every validation run
 * is recorded as the labels it saw.
 */
function fakePorts(opts: {
  goods?: TenantState[];
  refuses?: (labels: string[]) => string | null;
  rejects?: (labels: string[]) => string | null;
}) {
  const validations: string[][] = [];
  const goods = new Map((opts.goods ?? []).map((g) => [g.tenant.id, g]));
  const ports: ServedStatesPorts = {
    render: (states) => {
      const refusal = opts.refuses?.(states.map(label)) ?? null;
      return refusal === null
        ? { ok: true, segments: { 'haproxy.cfg': states.map(label) } }
        : { ok: false, message: refusal };
    },
    validate: async (states): Promise<Verdict> => {
      const labels = states.map(label);
      validations.push(labels);
      const message = opts.refuses?.(labels) ?? opts.rejects?.(labels) ?? null;
      return message === null ? { ok: true } : { ok: false, message };
    },
    goodStates: async (tenants) => new Map(tenants.flatMap((t) => (goods.has(t) ? [[t, goods.get(t)!] as const] : []))),
    structure: (s) => (s as unknown as Fake).structure,
  };
  return { ports, validations };
}

function input(
  current: TenantState[],
  knownStates: [string, RenderStateSummary][],
  more: Partial<ServedStatesInput> = {},
): ServedStatesInput {
  return {
    current: current.map(hashed),
    known: new Map(knownStates),
    whole: false,
    runtimeChangesNeedNoBinary: false,
    ...more,
  };
}

const a1 = state('a', '1');
const b1 = state('b', '1');
const c1 = state('c', '1');
const validatedAt1 = [known('a', '1'), known('b', '1', 3), known('c', '1', 4)];

describe('planServedStates on the fast path', () => {
  it('when no tenant changed since it last validated, then no binary runs and the one whole render is the output', async () => {
    const { ports, validations } = fakePorts({});
    const plan = await planServedStates(input([a1, b1, c1], validatedAt1), ports);
    expect(validations).toEqual([]);
    expect(plan).toMatchObject({ served: [a1, b1, c1], good: [], held: [], settingsValidated: false });
    expect(plan.segments).toEqual({ 'haproxy.cfg': ['a@1', 'b@1', 'c@1'] });
  });

  it('when the node’s settings are new, then every tenant is validated together once and the settings count as validated', async () => {
    const { ports, validations } = fakePorts({});
    const plan = await planServedStates(input([a1, b1, c1], validatedAt1, { whole: true }), ports);
    expect(validations).toEqual([['a@1', 'b@1', 'c@1']]);
    expect(plan.settingsValidated).toBe(true);
  });

  it('when one tenant changed, then only it goes through the binary, and it is recorded as good', async () => {
    const b2 = state('b', '2');
    const { ports, validations } = fakePorts({ goods: [b1] });
    const plan = await planServedStates(input([a1, b2, c1], validatedAt1), ports);
    expect(validations).toEqual([['b@2']]);
    expect(plan.served).toEqual([a1, b2, c1]);
    expect(plan.good.map((g) => label(g.state))).toEqual(['b@2']);
    expect(plan.settingsValidated).toBe(false);
  });

  it('on HAProxy, when a tenant changed only in what the Runtime API sets live, then no binary runs for it; on NGINX it does', async () => {
    const b2 = state('b', '2', '1'); // same structure as b@1
    const haproxy = fakePorts({ goods: [b1] });
    const plan = await planServedStates(
      input([a1, b2, c1], validatedAt1, { runtimeChangesNeedNoBinary: true }),
      haproxy.ports,
    );
    expect(haproxy.validations).toEqual([]);
    expect(plan.good.map((g) => label(g.state))).toEqual(['b@2']);
    const nginx = fakePorts({ goods: [b1] });
    await planServedStates(input([a1, b2, c1], validatedAt1), nginx.ports);
    expect(nginx.validations).toEqual([['b@2']]);
  });
});

describe('planServedStates holding culprits', () => {
  it('when a changed tenant fails alone, then it alone is held at its last good state, with the validator’s message and that state’s revision', async () => {
    const b2 = state('b', '2');
    const c2 = state('c', '2');
    const { ports } = fakePorts({
      goods: [b1, c1],
      rejects: (labels) => (labels.includes('b@2') ? 'b: bad certificate' : null),
    });
    const plan = await planServedStates(input([a1, b2, c2], validatedAt1), ports);
    expect(plan.served).toEqual([a1, b1, c2]);
    expect(plan.held).toEqual([{ tenant: 'b', error: 'b: bad certificate', servingRevision: 3 }]);
    expect(plan.good.map((g) => label(g.state))).toEqual(['c@2']);
    expect(plan.segments).toBeUndefined();
    expect(plan.settingsValidated).toBe(true);
  });

  it('when the culprit never validated, then it is left out and flagged with no serving revision', async () => {
    const d1 = state('d', '1');
    const { ports } = fakePorts({ rejects: (labels) => (labels.includes('d@1') ? 'd: unknown keyword' : null) });
    const plan = await planServedStates(input([a1, b1, c1, d1], validatedAt1), ports);
    expect(plan.served).toEqual([a1, b1, c1]);
    expect(plan.held).toEqual([{ tenant: 'd', error: 'd: unknown keyword', servingRevision: null }]);
    expect(plan.good).toEqual([]);
  });

  it('when two changed tenants are refused only together (a shared listener), then both are held with the refusal', async () => {
    const b2 = state('b', '2');
    const c2 = state('c', '2');
    const refuses = (labels: string[]) =>
      labels.includes('b@2') && labels.includes('c@2') ? 'listener 10.0.0.1:443 is shared' : null;
    const { ports } = fakePorts({ goods: [b1, c1], refuses });
    const plan = await planServedStates(input([a1, b2, c2], validatedAt1), ports);
    expect(plan.served).toEqual([a1, b1, c1]);
    expect(plan.held.map((h) => [h.tenant, h.error])).toEqual([
      ['b', 'listener 10.0.0.1:443 is shared'],
      ['c', 'listener 10.0.0.1:443 is shared'],
    ]);
  });

  it('when changed tenants fail only together in the validator, then both are held with the failure of their joint check', async () => {
    const b2 = state('b', '2');
    const c2 = state('c', '2');
    const rejects = (labels: string[]) =>
      labels.includes('b@2') && labels.includes('c@2') ? `clash in ${labels.join(',')}` : null;
    const { ports, validations } = fakePorts({ goods: [b1, c1], rejects });
    const plan = await planServedStates(input([a1, b2, c2], validatedAt1), ports);
    expect(plan.served).toEqual([a1, b1, c1]);
    expect(plan.held.map((h) => [h.tenant, h.error])).toEqual([
      ['b', 'clash in b@2,c@2'],
      ['c', 'clash in b@2,c@2'],
    ]);
    expect(validations).toEqual([['b@2', 'c@2'], ['b@2'], ['c@2'], ['a@1', 'b@1', 'c@1']]);
  });

  it('when the mix with the culprit held still fails, then every changed tenant is held', async () => {
    const b2 = state('b', '2');
    const c2 = state('c', '2');
    const rejects = (labels: string[]) =>
      labels.includes('b@2')
        ? 'b: bad certificate'
        : labels.includes('b@1') && labels.includes('c@2')
          ? 'b@1 and c@2 clash'
          : null;
    const { ports, validations } = fakePorts({ goods: [b1, c1], rejects });
    const plan = await planServedStates(input([a1, b2, c2], validatedAt1), ports);
    expect(plan.served).toEqual([a1, b1, c1]);
    expect(plan.held.map((h) => [h.tenant, h.error])).toEqual([
      ['b', 'b: bad certificate'],
      ['c', 'b@1 and c@2 clash'],
    ]);
    expect(plan.good).toEqual([]);
    expect(validations).toEqual([['b@2', 'c@2'], ['b@2'], ['c@2'], ['a@1', 'b@1', 'c@2'], ['a@1', 'b@1', 'c@1']]);
  });

  it('when even the last good states do not validate, then it throws', async () => {
    const b2 = state('b', '2');
    const { ports } = fakePorts({ goods: [b1], rejects: () => 'global section broken' });
    await expect(planServedStates(input([a1, b2, c1], validatedAt1), ports)).rejects.toThrow(UpstreamError);
    await expect(planServedStates(input([a1, b2, c1], validatedAt1), ports)).rejects.toThrow(
      /even the last good configuration does not validate: global section broken/,
    );
  });

  it('keeps at most 4,000 characters of a validator’s message', async () => {
    const b2 = state('b', '2');
    const { ports } = fakePorts({
      goods: [b1],
      rejects: (labels) => (labels.includes('b@2') ? 'x'.repeat(5000) : null),
    });
    const plan = await planServedStates(input([a1, b2, c1], validatedAt1), ports);
    expect(plan.held[0]!.error).toBe(`${'x'.repeat(4000)}…`);
  });
});
