import { canonicalIp } from './ip.js';
import type {
  DesiredBackend,
  DesiredCertificate,
  DesiredRuntime,
  DesiredServer,
  ObservedRuntime,
  ObservedServer,
  ServerAdmin,
  ServerCheck,
  ServerTls,
} from './runtime-state.js';

/**
 * The command builders the planner formats with, named by what it uses: the fleet's
 * `commandBuilders` (fleet/runtime-api/commands/command-builders.ts) satisfies it, so every
 * argument goes through the same guards, while this module imports nothing outside the domain.
 * A builder may throw for an argument it refuses.
 */
export interface CommandBuilders<C> {
  setServerWeight(backend: string, server: string, weight: number): C;
  setServerAddr(backend: string, server: string, ip: string, port: number): C;
  setServerState(backend: string, server: string, state: ServerAdmin): C;
  addServer(
    backend: string,
    server: string,
    ip: string,
    port: number,
    options: { weight?: number; backup?: boolean; check?: ServerCheck; tls?: ServerTls },
  ): C;
  enableServer(backend: string, server: string): C;
  enableHealth(backend: string, server: string): C;
  delServer(backend: string, server: string): C;
  setFrontendMaxconn(frontend: string, maxconn: number): C;
  addMap(map: string, key: string, value: string): C;
  setMap(map: string, key: string, value: string): C;
  delMap(map: string, key: string): C;
  setSslCert(certFile: string, pem: string): C;
  commitSslCert(certFile: string): C;
}

export interface RuntimePlan<C> {
  /** What to send now, in order; a pipelined batch of them is safe. */
  readonly commands: readonly C[];
  /** Differences the Runtime API cannot remove: they wait for a reload (the structural hash already asks for it). */
  readonly pendingReload: readonly string[];
  /** Removals part-way through (draining, waiting for sessions to end): a later pass takes the next step. */
  readonly inProgress: readonly string[];
  readonly notes: readonly string[];
  /**
   * Cap raises the Runtime API cannot make safely (the frontend is full; see planFrontends): the
   * files carry them, and the node needs a reload to apply them. Sorted by frontend.
   */
  readonly deferredCaps: readonly { readonly frontend: string; readonly maxconn: number }[];
}

export interface PlanOptions {
  /** How long a removed member drains before it is forced into maintenance with sessions still attached. */
  readonly drainTimeoutMs: number;
}

/**
 * The commands that make a live HAProxy match the desired state, from what it holds now. Pure
 * and deterministic (sorted by name), and idempotent by construction: planned again from the
 * state those commands produce, it plans nothing. A member removal is a sequence (drain, then
 * maintenance, then delete once no session is attached), so only its next safe step is planned.
 */
export function planRuntime<C>(
  desired: DesiredRuntime,
  observed: ObservedRuntime,
  build: CommandBuilders<C>,
  options: PlanOptions,
): RuntimePlan<C> {
  const plan = new PlanBuilder<C>();
  planFrontends(plan, desired, observed, build);
  planBackends(plan, desired, observed, build, options);
  planCapsMap(plan, desired, observed, build);
  for (const cert of [...desired.certificates].sort(byKey((c) => c.file))) planCertificate(plan, cert, observed, build);
  return plan.result();
}

class PlanBuilder<C> {
  private readonly commands: C[] = [];
  readonly pendingReload: string[] = [];
  readonly inProgress: string[] = [];
  readonly notes: string[] = [];
  readonly deferredCaps: { frontend: string; maxconn: number }[] = [];

  /** Adds a group of commands that only make sense together; a refused argument drops the group with a note. */
  add(what: string, commands: () => C[]): void {
    try {
      this.commands.push(...commands());
    } catch (error) {
      this.notes.push(`cannot ${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  result(): RuntimePlan<C> {
    return Object.freeze({
      commands: Object.freeze([...this.commands]),
      pendingReload: Object.freeze([...this.pendingReload]),
      inProgress: Object.freeze([...this.inProgress]),
      notes: Object.freeze([...this.notes]),
      deferredCaps: Object.freeze([...this.deferredCaps]),
    });
  }
}

/**
 * Caps that come down go first, so that the frontends' caps never add up to more than the
 * process's maxconn between two commands. A cap goes up at runtime only on a frontend with room
 * to spare: on HAProxy 2.6.12 (Debian 12's package; haproxy/haproxy#2726, fixed upstream in 2024)
 * `set maxconn frontend` raising a frontend that is full resumes its waiting listener under the
 * proxy lock the command already holds, so the worker deadlocks and the watchdog aborts the whole
 * process. Pausing the listeners around the raise (`disable`/`enable frontend`) avoids that but,
 * measured here, resets the connections waiting in the backlog and, under load, sometimes leaves
 * the listener not accepting at all. So a full frontend (or one within the margin of full, which
 * covers connections arriving between the reading and the command) gets its raise by a reload:
 * the files carry it, and the plan lists it in `deferredCaps` so that the reconciler asks the
 * node's agent for that reload (a hitless one: the old worker finishes its sessions). Lowering
 * never resumes a waiting listener (a full frontend stays full), so it always goes out at once.
 */
function planFrontends<C>(
  plan: PlanBuilder<C>,
  desired: DesiredRuntime,
  observed: ObservedRuntime,
  build: CommandBuilders<C>,
): void {
  const running = new Map(observed.frontends.map((f) => [f.name, f]));
  const raises: { readonly name: string; readonly maxconn: number }[] = [];
  for (const fe of [...desired.frontends].sort(byKey((f) => f.name))) {
    const live = running.get(fe.name);
    if (live === undefined) {
      plan.pendingReload.push(`frontend ${fe.name} is not running yet (a new VIP starts with the next reload)`);
    } else if (live.maxconn !== 0 && fe.maxconn > live.maxconn) {
      // A live maxconn of 0 is no limit: nothing waits for a slot, and any cap lowers it.
      if (live.sessions !== null && live.sessions < live.maxconn - Math.max(RAISE_MARGIN, Math.ceil(live.maxconn / 20)))
        raises.push(fe);
      else {
        plan.deferredCaps.push({ frontend: fe.name, maxconn: fe.maxconn });
        plan.pendingReload.push(
          `frontend ${fe.name} is at its cap (${live.sessions ?? 'unknown'} of ${live.maxconn} sessions): its raise to ${fe.maxconn} goes out with a reload (HAProxy 2.6 aborts on a runtime raise of a full frontend)`,
        );
      }
    } else if (live.maxconn !== fe.maxconn) {
      plan.add(`cap frontend ${fe.name}`, () => [build.setFrontendMaxconn(fe.name, fe.maxconn)]);
    }
  }
  for (const fe of raises)
    plan.add(`raise the cap of frontend ${fe.name}`, () => [build.setFrontendMaxconn(fe.name, fe.maxconn)]);
  const wanted = new Set(desired.frontends.map((f) => f.name));
  const alone = desired.leftAlone?.frontends;
  for (const fe of [...observed.frontends].sort(byKey((f) => f.name))) {
    if (!wanted.has(fe.name) && alone?.has(fe.name) !== true)
      plan.pendingReload.push(`frontend ${fe.name} is removed with the next reload`);
  }
}

/** Free slots a frontend needs (at least; 5% of its cap above 160) to have its cap raised at runtime. */
const RAISE_MARGIN = 8;

function planBackends<C>(
  plan: PlanBuilder<C>,
  desired: DesiredRuntime,
  observed: ObservedRuntime,
  build: CommandBuilders<C>,
  options: PlanOptions,
): void {
  const running = new Set(observed.backends);
  const serversByBackend = groupBy(observed.servers, (s) => s.backend);
  for (const be of [...desired.backends].sort(byKey((b) => b.name))) {
    if (!running.has(be.name)) {
      plan.pendingReload.push(`backend ${be.name} is not running yet (a new pool or mode starts with the next reload)`);
      continue;
    }
    planServers(plan, be, serversByBackend.get(be.name) ?? [], build, options);
  }
  const wanted = new Set(desired.backends.map((b) => b.name));
  for (const b of desired.leftAlone?.backends ?? []) wanted.add(b.name);
  for (const [name, servers] of [...serversByBackend].sort(byKey(([n]) => n))) {
    if (!wanted.has(name))
      plan.pendingReload.push(`backend ${name} (${servers.length} servers) is removed with the next reload`);
  }
}

function planServers<C>(
  plan: PlanBuilder<C>,
  be: DesiredBackend,
  live: readonly ObservedServer[],
  build: CommandBuilders<C>,
  options: PlanOptions,
): void {
  const byName = new Map(live.map((s) => [s.name, s]));
  let kept = 0;
  for (const srv of [...be.servers].sort(byKey((s) => s.name))) {
    const current = byName.get(srv.name);
    if (current === undefined) planAdd(plan, be, srv, build);
    else {
      kept += 1;
      planChange(plan, be.name, srv, current, build);
    }
  }
  // Every live server is still wanted (names are unique): nothing to take out, the usual case.
  if (kept === live.length) return;
  const wanted = new Set(be.servers.map((s) => s.name));
  for (const srv of [...live].sort(byKey((s) => s.name))) {
    if (!wanted.has(srv.name)) planRemoval(plan, be, srv, build, options);
  }
}

/**
 * `add server` then, in the same batch, `enable health` and the admin state: the server was absent
 * from the state just read and one node's passes never overlap, so the enable cannot reach a
 * same-named server someone else made; a refused add only makes the enables fail harmlessly.
 */
function planAdd<C>(plan: PlanBuilder<C>, be: DesiredBackend, srv: DesiredServer, build: CommandBuilders<C>): void {
  const id = `${be.name}/${srv.name}`;
  if (!be.dynamicMembers) {
    plan.pendingReload.push(
      `${id} joins with the next reload (cookie persistence: HAProxy cannot add a server with a cookie at runtime)`,
    );
    return;
  }
  plan.add(`add ${id}`, () => {
    const check = be.check ?? undefined;
    const tls = be.tls ?? undefined;
    const options = {
      weight: srv.weight,
      ...(srv.backup && { backup: true }),
      ...(tls && { tls }),
      ...(check && { check }),
    };
    const commands = [build.addServer(be.name, srv.name, srv.address, srv.port, options)];
    // Added servers start in maintenance and run no checks until told to.
    if (check !== undefined) commands.push(build.enableHealth(be.name, srv.name));
    if (srv.admin === 'ready') commands.push(build.enableServer(be.name, srv.name));
    if (srv.admin === 'drain') commands.push(build.setServerState(be.name, srv.name, 'drain'));
    return commands;
  });
}

function planChange<C>(
  plan: PlanBuilder<C>,
  backend: string,
  srv: DesiredServer,
  current: ObservedServer,
  build: CommandBuilders<C>,
): void {
  // Names are joined only where something changes: most servers of most passes have nothing to do.
  if (current.backup !== null && srv.backup !== current.backup)
    plan.pendingReload.push(
      `${backend}/${srv.name} becomes ${srv.backup ? 'a backup' : 'an active'} server with the next reload`,
    );
  if (!sameAddress(srv.address, current.address) || srv.port !== current.port) {
    plan.add(`move ${backend}/${srv.name}`, () => [build.setServerAddr(backend, srv.name, srv.address, srv.port)]);
  }
  if (srv.weight !== current.weight)
    plan.add(`weigh ${backend}/${srv.name}`, () => [build.setServerWeight(backend, srv.name, srv.weight)]);
  if (srv.admin !== current.admin)
    plan.add(`set the state of ${backend}/${srv.name}`, () => [build.setServerState(backend, srv.name, srv.admin)]);
}

/**
 * The next safe step of taking a server out: no session is ever cut while it drains, and
 * `del server` is only sent where HAProxy accepts it (maintenance, nothing attached). Behind
 * cookie persistence the server can only be drained; the reload removes it.
 */
function planRemoval<C>(
  plan: PlanBuilder<C>,
  be: DesiredBackend,
  srv: ObservedServer,
  build: CommandBuilders<C>,
  options: PlanOptions,
): void {
  const id = `${be.name}/${srv.name}`;
  const sessions =
    srv.sessions === null ? 'sessions not read' : `${srv.sessions} session${srv.sessions === 1 ? '' : 's'}`;
  if (!be.dynamicMembers) {
    plan.pendingReload.push(`${id} leaves with the next reload (cookie persistence keeps the member set structural)`);
    if (srv.admin === 'ready') plan.add(`drain ${id}`, () => [build.setServerState(be.name, srv.name, 'drain')]);
    return;
  }
  // Sessions not read count as attached: nothing is deleted on a guess (the next pass reads them).
  if (srv.sessions === 0) {
    const commands = () =>
      (srv.admin === 'maint' ? [] : [build.setServerState(be.name, srv.name, 'maint')]).concat(
        build.delServer(be.name, srv.name),
      );
    plan.add(`remove ${id}`, commands);
  } else if (srv.admin === 'ready') {
    plan.add(`drain ${id}`, () => [build.setServerState(be.name, srv.name, 'drain')]);
    plan.inProgress.push(`${id} is draining (${sessions}) before it is deleted`);
  } else if (srv.admin === 'drain' && srv.secondsInState * 1000 >= options.drainTimeoutMs) {
    plan.add(`stop ${id}`, () => [build.setServerState(be.name, srv.name, 'maint')]);
    plan.inProgress.push(
      `${id} drained for ${srv.secondsInState} s (the limit) and goes to maintenance; it is deleted once its ${sessions} end`,
    );
  } else {
    plan.inProgress.push(
      `${id} is ${srv.admin === 'drain' ? 'draining' : 'in maintenance'} with ${sessions}; deleted once they end`,
    );
  }
}

/**
 * The tenants' caps (request rate under the tenant id, connections under `<tenant>.conn`). Caps
 * that come down are set before caps that go up, so that between two commands the caps on the
 * node never add up to more than the allocator gave out.
 */
function planCapsMap<C>(
  plan: PlanBuilder<C>,
  desired: DesiredRuntime,
  observed: ObservedRuntime,
  build: CommandBuilders<C>,
): void {
  const map = desired.capsMap;
  if (observed.capsMap === null) {
    if (map.referenced) plan.pendingReload.push(`map ${map.file} is not loaded yet; it is read with the next reload`);
    return;
  }
  const live = groupBy(observed.capsMap, (e) => e.key);
  const raises: (readonly [string, string])[] = [];
  for (const [key, value] of [...map.entries].sort(byKey(([k]) => k))) {
    const values = live.get(key);
    // `add map` appends even when the key exists, so it is only for keys the map lacks.
    if (values === undefined) plan.add(`add ${key} to ${map.file}`, () => [build.addMap(map.file, key, value)]);
    else if (values.some((e) => e.value !== value)) {
      if (values.every((e) => Number(e.value) < Number(value))) raises.push([key, value]);
      else plan.add(`set ${key} in ${map.file}`, () => [build.setMap(map.file, key, value)]);
    }
  }
  for (const [key, value] of raises) plan.add(`set ${key} in ${map.file}`, () => [build.setMap(map.file, key, value)]);
  const wanted = new Set(map.entries.map(([k]) => k));
  const alone = desired.leftAlone?.mapKeys;
  for (const key of [...live.keys()].sort()) {
    if (!wanted.has(key) && alone?.has(key) !== true)
      plan.add(`delete ${key} from ${map.file}`, () => [build.delMap(map.file, key)]);
  }
}

function planCertificate<C>(
  plan: PlanBuilder<C>,
  cert: DesiredCertificate,
  observed: ObservedRuntime,
  build: CommandBuilders<C>,
): void {
  if (!observed.certificates.has(cert.file)) return;
  const live = observed.certificates.get(cert.file);
  if (live === null) {
    plan.pendingReload.push(`certificate ${cert.file} is loaded with the next reload`);
  } else if (live !== cert.fingerprint) {
    plan.add(`replace certificate ${cert.file}`, () => [
      build.setSslCert(cert.file, cert.pem),
      build.commitSslCert(cert.file),
    ]);
  }
}

function sameAddress(a: string, b: string): boolean {
  return a === b || (canonicalIp(a) ?? a) === (canonicalIp(b) ?? b);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list === undefined) out.set(k, [item]);
    else list.push(item);
  }
  return out;
}

function byKey<T>(key: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}
