import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { CreateMember, Member, PatchMember, ReplaceMembers } from '../domain/member.js';
import type { Db } from '../db/connect.js';
import { PG_UNIQUE_VIOLATION, pgErrorCode } from '../db/pg-error-codes.js';
import * as repo from '../db/member-repository.js';
import type { MemberSettings } from '../db/member-repository.js';
import { poolExists } from '../db/pool-repository.js';
import { checkIfMatch, mutate, type AuditEntry, type Tx, type WriteContext, type Written } from './mutation.js';
import { memberResourceId } from './pool-service.js';
import { fetchSize, toPage } from './page.js';

export interface MemberPage {
  readonly items: Member[];
  readonly nextCursor: string | null;
}

/** The answer to a replace: the whole set after it, and the revision it committed (or the current one for a no-op). */
export interface MemberSet {
  readonly items: Member[];
  readonly revision: number;
}

export class MemberService {
  constructor(private readonly db: Db) {}

  async get(tenantId: string, pool: string, name: string): Promise<Member> {
    await requirePool(this.db, tenantId, pool);
    const member = await repo.findMember(this.db, tenantId, pool, name);
    if (!member) throw new NotFoundError('member', name);
    return member;
  }

  async list(tenantId: string, pool: string, q: { limit: number; cursor?: string | undefined }): Promise<MemberPage> {
    await requirePool(this.db, tenantId, pool);
    const items = await repo.listMembers(this.db, tenantId, pool, { limit: fetchSize(q.limit), after: q.cursor });
    return toPage(items, q.limit, (x) => x.name);
  }

  async create(ctx: WriteContext, tenantId: string, pool: string, input: CreateMember): Promise<Written<Member>> {
    return mutate(this.db, ctx, async (tx) => {
      await requirePool(tx.db, tenantId, pool);
      if (await repo.findMember(tx.db, tenantId, pool, input.name)) {
        throw new ConflictError(`member '${input.name}' already exists in pool '${pool}'`);
      }
      await refuseTakenEndpoint(tx.db, tenantId, pool, input);
      const [member] = await insertOrConflict(tx, tenantId, pool, [input]);
      const resourceId = memberResourceId(tenantId, pool, input.name);
      tx.audit({ action: 'create', resourceType: 'member', resourceId, tenantId, before: null, after: member });
      return member!;
    });
  }

  /** A patch that changes nothing commits no revision and answers the member as it is. */
  async patch(
    ctx: WriteContext,
    tenantId: string,
    pool: string,
    name: string,
    patch: PatchMember,
  ): Promise<Written<Member>> {
    return mutate(this.db, ctx, async (tx) => {
      await requirePool(tx.db, tenantId, pool);
      const before = await repo.findMember(tx.db, tenantId, pool, name);
      if (!before) throw new NotFoundError('member', name);
      checkIfMatch(tx, `member '${name}'`, before.revision);
      const next: MemberSettings = {
        address: patch.address ?? before.address,
        port: patch.port ?? before.port,
        weight: patch.weight ?? before.weight,
        state: patch.state ?? before.state,
        backup: patch.backup ?? before.backup,
      };
      if (sameSettings(before, next)) return before;
      await refuseTakenEndpoint(tx.db, tenantId, pool, { ...next, name });
      const after = await updateOrConflict(tx, tenantId, pool, name, next);
      tx.audit({
        action: 'update',
        resourceType: 'member',
        resourceId: memberResourceId(tenantId, pool, name),
        tenantId,
        before,
        after,
      });
      return after;
    });
  }

  async delete(ctx: WriteContext, tenantId: string, pool: string, name: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      await requirePool(tx.db, tenantId, pool);
      const before = await repo.findMember(tx.db, tenantId, pool, name);
      if (!before) throw new NotFoundError('member', name);
      checkIfMatch(tx, `member '${name}'`, before.revision);
      await repo.deleteMembers(tx.db, tenantId, pool, [name]);
      tx.audit({
        action: 'delete',
        resourceType: 'member',
        resourceId: memberResourceId(tenantId, pool, name),
        tenantId,
        before,
        after: null,
      });
      return null;
    });
  }

  /**
   * Makes the pool's member set exactly `input.members` in one transaction and one revision:
   * members are matched by name; unchanged ones keep their revision; nothing changed, nothing committed.
   */
  async replace(ctx: WriteContext, tenantId: string, pool: string, input: ReplaceMembers): Promise<MemberSet> {
    const w = await mutate(this.db, ctx, async (tx) => {
      await requirePool(tx.db, tenantId, pool);
      const current = await repo.listMembers(tx.db, tenantId, pool);
      const plan = planReplace(current, input.members);
      await applyReplace(tx, tenantId, pool, plan);
      return repo.listMembers(tx.db, tenantId, pool);
    });
    return { items: w.value, revision: w.revision };
  }
}

interface ReplacePlan {
  readonly create: readonly CreateMember[];
  readonly update: readonly { readonly before: Member; readonly next: CreateMember }[];
  readonly remove: readonly Member[];
}

/** Pure diff by name of the current set against the desired one. */
function planReplace(current: readonly Member[], desired: readonly CreateMember[]): ReplacePlan {
  const byName = new Map(current.map((m) => [m.name, m]));
  const wanted = new Set(desired.map((m) => m.name));
  const create: CreateMember[] = [];
  const update: { before: Member; next: CreateMember }[] = [];
  for (const next of desired) {
    const before = byName.get(next.name);
    if (!before) create.push(next);
    else if (!sameSettings(before, next)) update.push({ before, next });
  }
  return { create, update, remove: current.filter((m) => !wanted.has(m.name)) };
}

/**
 * Changed members are deleted and re-inserted (keeping their creation time) rather than updated
 * in place: the (address, port) unique key is checked row by row, so swapping two members'
 * endpoints with UPDATEs would trip it half way although the final set is valid.
 */
async function applyReplace(tx: Tx, tenantId: string, pool: string, plan: ReplacePlan): Promise<void> {
  await repo.deleteMembers(
    tx.db,
    tenantId,
    pool,
    [...plan.remove, ...plan.update.map((u) => u.before)].map((m) => m.name),
  );
  const rewritten = plan.update.map((u) => ({ ...u.next, createdAt: u.before.createdAt }));
  const written = await insertOrConflict(tx, tenantId, pool, [...rewritten, ...plan.create]);
  const after = new Map(written.map((m) => [m.name, m]));
  const audit = (action: AuditEntry['action'], name: string, before: Member | null) => {
    const resourceId = memberResourceId(tenantId, pool, name);
    tx.audit({ action, resourceType: 'member', resourceId, tenantId, before, after: after.get(name) ?? null });
  };
  for (const m of plan.remove) audit('delete', m.name, m);
  for (const u of plan.update) audit('update', u.before.name, u.before);
  for (const m of plan.create) audit('create', m.name, null);
}

async function requirePool(db: Db, tenantId: string, pool: string): Promise<void> {
  if (!(await poolExists(db, tenantId, pool))) throw new NotFoundError('pool', pool);
}

/** Two members of one pool on the same address:port would be one server twice to the proxy. */
async function refuseTakenEndpoint(
  db: Db,
  tenantId: string,
  pool: string,
  m: { name: string; address: string; port: number },
): Promise<void> {
  const other = await repo.findMemberByEndpoint(db, tenantId, pool, m, m.name);
  if (other) {
    throw new ConflictError(`${endpoint(m)} is already used by member '${other.name}' in pool '${pool}'`, {
      member: other.name,
    });
  }
}

/** The explicit checks give the clear message; the unique keys are the backstop for a row written outside this path. */
async function insertOrConflict(
  tx: Tx,
  tenantId: string,
  pool: string,
  ms: readonly (CreateMember & { createdAt?: string })[],
): Promise<Member[]> {
  try {
    return await repo.insertMembers(tx.db, tenantId, pool, ms, tx.revision);
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION)
      throw new ConflictError(`a member name or address:port is already used in pool '${pool}'`);
    throw err;
  }
}

async function updateOrConflict(
  tx: Tx,
  tenantId: string,
  pool: string,
  name: string,
  next: MemberSettings,
): Promise<Member> {
  try {
    return await repo.updateMember(tx.db, tenantId, pool, name, next, tx.revision);
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION)
      throw new ConflictError(`${endpoint(next)} is already used in pool '${pool}'`);
    throw err;
  }
}

function sameSettings(a: MemberSettings, b: MemberSettings): boolean {
  return (
    a.address === b.address &&
    a.port === b.port &&
    a.weight === b.weight &&
    a.state === b.state &&
    a.backup === b.backup
  );
}

/** IPv6 in brackets, so the port cannot be read as part of the address. */
function endpoint(m: { address: string; port: number }): string {
  return m.address.includes(':') ? `[${m.address}]:${m.port}` : `${m.address}:${m.port}`;
}
