import { createHash } from 'node:crypto';
import type { CreateMember } from '../domain/member.js';
import type { Member } from '../domain/member.js';
import type { ApiRequest } from './api-client.js';
import { canonicalJson, sameValue } from '../domain/canonical-json.js';
import type { DesiredTenant } from './load-manifests.js';
import type { DesiredPool, DesiredVip, ManifestSource } from './manifest.js';
import type { CurrentPool, CurrentVip, TenantState } from './tenant-state.js';

export type ObjectKind = 'tenant' | 'certificate' | 'ca-bundle' | 'pool' | 'vip' | 'route';
export type Operation = 'create' | 'update' | 'delete';

/** One object to change, with the API requests that change it, in order. */
export interface PlannedAction {
  readonly op: Operation;
  readonly kind: ObjectKind;
  /** `tenant`, `tenant/object` or `tenant/vip/route`. */
  readonly name: string;
  /** What changes, e.g. `port, hostnames` or `members: +1 ~1`; null when nothing more is worth saying. */
  readonly detail: string | null;
  readonly requests: readonly ApiRequest[];
  /** It needs an object this same plan creates, so a server dry run of it alone would be refused. */
  readonly needsEarlierCreate: boolean;
}

/** Something the plan cannot do: the manifest asks for what the API would refuse. */
export interface PlanProblem {
  /** Field path in the manifest document. */
  readonly path: string;
  readonly message: string;
  /**
   * `missing`: a referenced object exists neither in the file nor on the server; `conflict`: the
   * server's state stands in the way. Both are refusals (exit 2), as the API's 404 and 409 are.
   */
  readonly kind: 'missing' | 'conflict';
}

export interface TenantPlan {
  readonly tenant: string;
  readonly source: ManifestSource;
  /** In the order they must run: tenant, certificates and CA bundles, pools, VIPs, routes; then deletes in reverse. */
  readonly actions: readonly PlannedAction[];
  readonly problems: readonly PlanProblem[];
  /** Things worth knowing that need no action (pending approval, members kept without --prune). */
  readonly notes: readonly string[];
  /** Objects the manifest names that already match. */
  readonly unchanged: number;
}

export interface PlanOptions {
  /** Delete the tenant's objects the manifest no longer names. */
  readonly prune: boolean;
}

const VIP_FIELDS = [
  'port',
  'protocol',
  'hostnames',
  'certificate',
  'persistence',
  'cookieName',
  'timeouts',
  'allowlist',
  'defaultPool',
] as const;
const MEMBER_FIELDS = ['address', 'port', 'weight', 'state', 'backup'] as const;

/**
 * The pure diff of one tenant's manifest against its current state: the ordered writes that make
 * the server match the file, and nothing else. Both sides are normalised the same way (the domain
 * schemas), so an applied manifest plans no action. Only this tenant is ever touched; with
 * `prune`, objects of this tenant the file does not name are deleted, children before parents.
 */
export function planManifest(desired: DesiredTenant, current: TenantState, options: PlanOptions): TenantPlan {
  const b = new PlanBuilder(desired, current);
  const created: Created = {
    tenant: planTenant(b, desired, current),
    certificates: new Set(),
    caBundles: new Set(),
    pools: new Set(),
    vips: new Set(),
  };
  planCertificates(b, desired, current, created);
  planCaBundles(b, desired, current, created);
  planPools(b, desired, current, options, created);
  planVips(b, desired, current, options, created);
  planRoutes(b, desired, current, created);
  if (options.prune) planDeletes(b, desired, current);
  else noteKept(b, desired, current);
  return b.build();
}

/** What this plan creates: a server dry run of an action that needs one of them cannot succeed alone. */
interface Created {
  readonly tenant: boolean;
  readonly certificates: Set<string>;
  readonly caBundles: Set<string>;
  readonly pools: Set<string>;
  readonly vips: Set<string>;
}

const tenantPath = (d: DesiredTenant) => `/v1/tenants/${d.id}`;

/** Uploads new certificates; rotates one only when the file's leaf differs (fingerprint or SANs). */
function planCertificates(b: PlanBuilder, desired: DesiredTenant, current: TenantState, created: Created): void {
  const base = tenantPath(desired);
  for (const cert of desired.certificates) {
    const have = current.certificates.find((c) => c.name === cert.name);
    const name = `${desired.id}/${cert.name}`;
    const body = { certificate: cert.certificate, privateKey: cert.privateKey };
    if (!have) {
      created.certificates.add(cert.name);
      b.add(
        'create',
        'certificate',
        name,
        null,
        [b.post(`${base}/certificates`, { name: cert.name, ...body })],
        created.tenant,
      );
    } else if (
      have.fingerprintSha256 !== cert.fingerprintSha256 ||
      !sameValue([...have.sans].sort(), [...cert.sans].sort())
    ) {
      const put: ApiRequest = {
        method: 'PUT',
        path: `${base}/certificates/${cert.name}`,
        body,
        ifMatch: have.revision,
      };
      b.add('update', 'certificate', name, 'rotate: new chain and key', [put], false);
    } else b.same();
  }
}

/** Uploads new CA bundles; replaces one only when its certificates differ (by fingerprint, in order). */
function planCaBundles(b: PlanBuilder, desired: DesiredTenant, current: TenantState, created: Created): void {
  const base = tenantPath(desired);
  for (const bundle of desired.caBundles) {
    const have = current.caBundles.find((c) => c.name === bundle.name);
    const name = `${desired.id}/${bundle.name}`;
    if (!have) {
      created.caBundles.add(bundle.name);
      b.add(
        'create',
        'ca-bundle',
        name,
        null,
        [b.post(`${base}/ca-bundles`, { name: bundle.name, certificates: bundle.certificates })],
        created.tenant,
      );
    } else if (
      !sameValue(
        have.certificates.map((c) => c.fingerprintSha256),
        [...bundle.fingerprints],
      )
    ) {
      const put: ApiRequest = {
        method: 'PUT',
        path: `${base}/ca-bundles/${bundle.name}`,
        body: { certificates: bundle.certificates },
        ifMatch: have.revision,
      };
      b.add('update', 'ca-bundle', name, 'new certificates', [put], false);
    } else b.same();
  }
}

/** Creates or patches pools; their members go in one `PUT …/members` each. */
function planPools(
  b: PlanBuilder,
  desired: DesiredTenant,
  current: TenantState,
  options: PlanOptions,
  created: Created,
): void {
  const base = tenantPath(desired);
  for (const pool of desired.pools) {
    const have = current.pools.find((p) => p.name === pool.name);
    const name = `${desired.id}/${pool.name}`;
    const members = memberChanges(pool, have, options.prune);
    const membersPut: ApiRequest = {
      method: 'PUT',
      path: `${base}/pools/${pool.name}/members`,
      body: { members: members.set },
    };
    // A pool naming a CA bundle or certificate this plan creates cannot be dry-run alone.
    const needs =
      created.tenant ||
      created.caBundles.has(pool.tls?.caBundle ?? '') ||
      created.certificates.has(pool.tls?.clientCertificate ?? '');
    if (!have) {
      created.pools.add(pool.name);
      const requests = [
        b.post(`${base}/pools`, {
          name: pool.name,
          algorithm: pool.algorithm,
          healthCheck: pool.healthCheck,
          tls: pool.tls,
        }),
      ];
      if (pool.members.length > 0) requests.push(membersPut);
      b.add('create', 'pool', name, members.summary, requests, needs);
      continue;
    }
    const patch = changedFields(pool, have, ['algorithm', 'healthCheck', 'tls']);
    const requests: ApiRequest[] = [];
    if (patch)
      requests.push({ method: 'PATCH', path: `${base}/pools/${pool.name}`, body: patch, ifMatch: have.revision });
    if (members.summary) requests.push(membersPut);
    const detail = [patch ? Object.keys(patch).join(', ') : null, members.summary].filter(Boolean).join('; ');
    if (requests.length > 0) b.add('update', 'pool', name, detail, requests, needs);
    else b.same();
    if (members.kept > 0)
      b.note(`pool ${name}: ${members.kept} member(s) not in the file are kept (--prune removes them)`);
  }
}

/** Checks every reference, then creates or patches VIPs (their address cannot move). */
function planVips(
  b: PlanBuilder,
  desired: DesiredTenant,
  current: TenantState,
  options: PlanOptions,
  created: Created,
): void {
  const base = tenantPath(desired);
  const pools = known(desired.pools, current.pools, options.prune);
  const certificates = known(desired.certificates, current.certificates, options.prune);
  desired.vips.forEach((vip, i) => {
    const at = `spec.vips[${i}]`;
    b.checkReference(`${at}.defaultPool`, 'pool', vip.defaultPool, pools, options.prune);
    b.checkReference(`${at}.certificate`, 'certificate', vip.certificate, certificates, options.prune);
    vip.routes.forEach((r, j) => {
      b.checkReference(`${at}.routes[${j}].pool`, 'pool', r.pool, pools, options.prune);
    });
    const have = current.vips.find((v) => v.name === vip.name);
    const name = `${desired.id}/${vip.name}`;
    const needs =
      created.tenant || created.pools.has(vip.defaultPool ?? '') || created.certificates.has(vip.certificate ?? '');
    if (!have) {
      created.vips.add(vip.name);
      const { routes: _routes, ...body } = vip;
      b.add('create', 'vip', name, null, [b.post(`${base}/vips`, body)], needs);
      return;
    }
    if (!b.checkAddress(at, desired.id, vip, have)) return;
    const patch = changedFields(vip, have, VIP_FIELDS);
    if (patch) {
      const request: ApiRequest = {
        method: 'PATCH',
        path: `${base}/vips/${vip.name}`,
        body: patch,
        ifMatch: have.revision,
      };
      b.add('update', 'vip', name, Object.keys(patch).join(', '), [request], needs);
    } else b.same();
  });
}

function planRoutes(b: PlanBuilder, desired: DesiredTenant, current: TenantState, created: Created): void {
  for (const vip of desired.vips) {
    const haveVip = current.vips.find((v) => v.name === vip.name);
    const path = `${tenantPath(desired)}/vips/${vip.name}/routes`;
    for (const r of vip.routes) {
      const have = haveVip?.routes.find((x) => x.name === r.name);
      const name = `${desired.id}/${vip.name}/${r.name}`;
      const needs = created.tenant || created.vips.has(vip.name) || created.pools.has(r.pool);
      if (!have) {
        b.add('create', 'route', name, null, [b.post(path, r)], needs);
        continue;
      }
      const patch = changedFields(r, have, ['priority', 'match', 'pool']);
      if (patch)
        b.add(
          'update',
          'route',
          name,
          Object.keys(patch).join(', '),
          [{ method: 'PATCH', path: `${path}/${r.name}`, body: patch, ifMatch: have.revision }],
          needs,
        );
      else b.same();
    }
  }
}

/** --prune: this tenant's objects the file does not name (the builder orders them children first). */
function planDeletes(b: PlanBuilder, desired: DesiredTenant, current: TenantState): void {
  const base = tenantPath(desired);
  const t = desired.id;
  const del = (path: string, revision: number): ApiRequest[] => [{ method: 'DELETE', path, ifMatch: revision }];
  for (const vip of sortByName(current.vips)) {
    const kept = desired.vips.find((v) => v.name === vip.name);
    if (!kept) {
      const detail = vip.routes.length > 0 ? `with its ${vip.routes.length} route(s)` : null;
      b.add('delete', 'vip', `${t}/${vip.name}`, detail, del(`${base}/vips/${vip.name}`, vip.revision), false);
      continue;
    }
    for (const r of sortByName(vip.routes)) {
      if (!kept.routes.some((x) => x.name === r.name))
        b.add(
          'delete',
          'route',
          `${t}/${vip.name}/${r.name}`,
          null,
          del(`${base}/vips/${vip.name}/routes/${r.name}`, r.revision),
          false,
        );
    }
  }
  for (const pool of sortByName(current.pools)) {
    if (desired.pools.some((p) => p.name === pool.name)) continue;
    const detail = pool.members.length > 0 ? `with its ${pool.members.length} member(s)` : null;
    b.add('delete', 'pool', `${t}/${pool.name}`, detail, del(`${base}/pools/${pool.name}`, pool.revision), false);
  }
  for (const cert of sortByName(current.certificates)) {
    if (!desired.certificates.some((c) => c.name === cert.name))
      b.add(
        'delete',
        'certificate',
        `${t}/${cert.name}`,
        null,
        del(`${base}/certificates/${cert.name}`, cert.revision),
        false,
      );
  }
  for (const bundle of sortByName(current.caBundles)) {
    if (!desired.caBundles.some((c) => c.name === bundle.name))
      b.add(
        'delete',
        'ca-bundle',
        `${t}/${bundle.name}`,
        null,
        del(`${base}/ca-bundles/${bundle.name}`, bundle.revision),
        false,
      );
  }
}

/** Without --prune, says how much the server holds that the file does not name, so nobody is surprised later. */
function noteKept(b: PlanBuilder, desired: DesiredTenant, current: TenantState): void {
  const missing = <T extends { name: string }>(have: readonly T[], want: readonly { name: string }[]) =>
    have.filter((h) => !want.some((w) => w.name === h.name)).length;
  const routes = desired.vips.reduce(
    (n, v) => n + missing(current.vips.find((x) => x.name === v.name)?.routes ?? [], v.routes),
    0,
  );
  const extra =
    missing(current.vips, desired.vips) +
    missing(current.pools, desired.pools) +
    missing(current.certificates, desired.certificates) +
    missing(current.caBundles, desired.caBundles) +
    routes;
  if (extra > 0)
    b.note(
      `tenant ${desired.id}: ${extra} object(s) on the server are not in the file and are kept (--prune deletes them)`,
    );
}

/** Creates or patches the tenant itself; returns whether it is created by this plan. */
function planTenant(b: PlanBuilder, desired: DesiredTenant, current: TenantState): boolean {
  const t = desired.id;
  const have = current.tenant;
  if (!have) {
    const body = {
      id: t,
      displayName: desired.displayName,
      reservation: desired.reservation,
      limit: desired.limit,
      labels: desired.labels,
      ...(desired.weight !== null ? { weight: desired.weight } : {}),
    };
    b.add('create', 'tenant', t, null, [b.post('/v1/tenants', body)], false);
    return true;
  }
  const patch: Record<string, unknown> = {};
  if (have.displayName !== desired.displayName) patch.displayName = desired.displayName;
  if (!sameValue(have.labels, desired.labels)) patch.labels = desired.labels;
  if (desired.weight !== null && have.weight !== desired.weight) patch.weight = desired.weight;
  const pending = have.approval?.pending ?? null;
  const capacity = { reservation: desired.reservation, limit: desired.limit };
  const waiting = pending !== null && sameValue({ reservation: pending.reservation, limit: pending.limit }, capacity);
  // Reservation and limit travel together: the server re-checks limit ≥ reservation on the merged pair.
  if (!waiting && !sameValue({ reservation: have.reservation, limit: have.limit }, capacity))
    Object.assign(patch, capacity);
  if (waiting)
    b.note(
      `tenant ${t}: the capacity change to ${describeResources(desired.reservation)} waits for an admin's approval`,
    );
  if (have.state === 'pending_approval')
    b.note(
      `tenant ${t} is pending approval: it renders nothing until an admin approves it (POST /v1/tenants/${t}/approve)`,
    );
  if (have.state === 'rejected' || have.state === 'suspended')
    b.note(`tenant ${t} is ${have.state}: its objects are stored but not served`);
  if (Object.keys(patch).length > 0) {
    b.add(
      'update',
      'tenant',
      t,
      Object.keys(patch).join(', '),
      [{ method: 'PATCH', path: `/v1/tenants/${t}`, body: patch, ifMatch: have.revision }],
      false,
    );
  } else b.same();
  return false;
}

interface MemberChanges {
  /** The whole set to PUT. */
  readonly set: CreateMember[];
  /** `members: +1 -1 ~1`, or null when the set already matches. */
  readonly summary: string | null;
  /** Members on the server the file does not name, kept because --prune is off. */
  readonly kept: number;
}

/**
 * PUT replaces the whole set, so without --prune the members the file does not name are sent back
 * as they are: the file adds and changes members but removes none.
 */
function memberChanges(pool: DesiredPool, have: CurrentPool | undefined, prune: boolean): MemberChanges {
  const current = have?.members ?? [];
  const named = new Set(pool.members.map((m) => m.name));
  const extras = prune ? [] : current.filter((m) => !named.has(m.name)).map(memberSettings);
  const added = pool.members.filter((m) => !current.some((c) => c.name === m.name)).length;
  const changed = pool.members.filter((m) => {
    const c = current.find((x) => x.name === m.name);
    return c !== undefined && MEMBER_FIELDS.some((f) => c[f] !== m[f]);
  }).length;
  const removed = prune ? current.filter((m) => !named.has(m.name)).length : 0;
  const parts = [
    added > 0 ? `+${added}` : '',
    removed > 0 ? `-${removed}` : '',
    changed > 0 ? `~${changed}` : '',
  ].filter(Boolean);
  return {
    set: [...pool.members, ...extras],
    summary: parts.length > 0 ? `members: ${parts.join(' ')}` : null,
    kept: extras.length,
  };
}

function memberSettings(m: Member): CreateMember {
  return { name: m.name, address: m.address, port: m.port, weight: m.weight, state: m.state, backup: m.backup };
}

/** The fields of `desired` that differ from `have`, as a PATCH body; null when none do. */
function changedFields<K extends string>(
  desired: { readonly [k in K]?: unknown },
  have: { readonly [k in K]?: unknown },
  fields: readonly K[],
): Record<string, unknown> | null {
  const patch: Record<string, unknown> = {};
  for (const f of fields) if (!sameValue(desired[f] ?? null, have[f] ?? null)) patch[f] = desired[f] ?? null;
  return Object.keys(patch).length > 0 ? patch : null;
}

/** Names a reference may use: the file's objects, and the server's too unless --prune deletes them. */
function known(
  fromFile: readonly { name: string }[],
  onServer: readonly { name: string }[],
  prune: boolean,
): { file: Set<string>; server: Set<string> } {
  return { file: new Set(fromFile.map((o) => o.name)), server: new Set(prune ? [] : onServer.map((o) => o.name)) };
}

function sortByName<T extends { name: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function describeResources(r: { vcpu: number; memoryMb: number }): string {
  return `${r.vcpu} vCPU / ${r.memoryMb} MB`;
}

/** Collects actions by phase so the order holds whatever order the manifest lists things in. */
class PlanBuilder {
  private readonly creates: PlannedAction[][] = [[], [], [], [], []];
  private readonly deletes: PlannedAction[][] = [[], [], [], []];
  private readonly problems: PlanProblem[] = [];
  private readonly notes: string[] = [];
  private unchanged = 0;
  private readonly stateHash: string;

  constructor(
    private readonly desired: DesiredTenant,
    current: TenantState,
  ) {
    this.stateHash = sha256(canonicalJson(current));
  }

  add(
    op: Operation,
    kind: ObjectKind,
    name: string,
    detail: string | null,
    requests: ApiRequest[],
    needsEarlierCreate: boolean,
  ): void {
    const action: PlannedAction = {
      op,
      kind,
      name,
      detail: detail === '' ? null : detail,
      requests,
      needsEarlierCreate,
    };
    const phase = PHASE[kind];
    (op === 'delete' ? this.deletes[DELETE_PHASE[kind]]! : this.creates[phase]!).push(action);
  }

  same(): void {
    this.unchanged++;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /**
   * A POST with an Idempotency-Key derived from the file, the object and the state it was planned
   * against: a retried request (or a re-run CI job that planned the same) replays the first answer
   * instead of failing with "already exists", while an object deleted since then is created anew
   * (the state, and so the key, differ).
   */
  post(path: string, body: unknown): ApiRequest {
    const key = sha256([this.desired.fileHash, this.stateHash, path, canonicalJson(body)].join('\n')).slice(0, 48);
    return { method: 'POST', path, body, idempotencyKey: `sy-apply-${key}` };
  }

  checkReference(
    path: string,
    what: string,
    name: string | null,
    names: { file: Set<string>; server: Set<string> },
    prune: boolean,
  ): void {
    if (name === null || names.file.has(name) || names.server.has(name)) return;
    const why = prune
      ? 'is not in this file (with --prune, objects the file does not name are deleted): add it to the file'
      : 'is neither in this file nor on the server: add it to the file, or fix the name';
    this.problems.push({ path, message: `${what} "${name}" ${why}`, kind: 'missing' });
  }

  /** A VIP's address (explicit or leased from a pool) is fixed for its life: a different one cannot be patched. */
  checkAddress(at: string, tenant: string, vip: DesiredVip, have: CurrentVip): boolean {
    const fix = `a VIP's address is fixed for its life: keep it in the file, or delete the VIP (switchyard delete vip ${vip.name} -t ${tenant}) and apply again`;
    if (vip.address !== undefined && (have.addressPool !== null || have.address !== vip.address)) {
      const now =
        have.addressPool !== null
          ? `leased from address pool ${have.addressPool} (${have.address})`
          : `on ${have.address}`;
      this.problems.push({
        path: `${at}.address`,
        message: `vip ${tenant}/${vip.name} is ${now}; ${fix}`,
        kind: 'conflict',
      });
      return false;
    }
    if (vip.addressPool !== undefined && have.addressPool !== vip.addressPool) {
      const now =
        have.addressPool === null
          ? `on the explicit address ${have.address}`
          : `leased from address pool ${have.addressPool}`;
      this.problems.push({
        path: `${at}.addressPool`,
        message: `vip ${tenant}/${vip.name} is ${now}; ${fix}`,
        kind: 'conflict',
      });
      return false;
    }
    return true;
  }

  build(): TenantPlan {
    return {
      tenant: this.desired.id,
      source: this.desired.source,
      actions: [...this.creates.flat(), ...this.deletes.flat()],
      problems: this.problems,
      notes: this.notes,
      unchanged: this.unchanged,
    };
  }
}

/** Creates and updates: parents first. */
const PHASE: Record<ObjectKind, number> = { tenant: 0, certificate: 1, 'ca-bundle': 1, pool: 2, vip: 3, route: 4 };
/** Deletes: children first (the tenant itself is never pruned). */
const DELETE_PHASE: Record<ObjectKind, number> = {
  route: 0,
  vip: 1,
  pool: 2,
  certificate: 3,
  'ca-bundle': 3,
  tenant: 3,
};

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
