import { randomInt } from 'node:crypto';
import type { ProxyNode } from '../domain/node.js';
import { defaultTrackPidFile, freeVrid, planVrrpInstances, VRID_MAX, type VrrpRouter } from '../domain/vrrp.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/vrrp-repository.js';
import type { StoredVrrpRouter } from '../db/vrrp-repository.js';
import type { Logger } from '../logger.js';
import { renderKeepalived } from '../render/keepalived.js';
import type { SecretBox } from './secret-box.js';

const AUTH_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** VRRPv2 PASS authentication carries 8 characters; keepalived ignores the rest. */
const AUTH_LENGTH = 8;

/** The additional data a router's sealed secret is bound to: a sealed value copied to another row does not open. */
const authContext = (group: string, address: string): string => `vrrp:${group}/${address}`;

/**
 * Renders each VRRP node's keepalived.conf from placement: one instance per VIP address the node
 * serves, its VRID and secret allocated once per node group and address (and stored sealed), its
 * priority from the node's rank in placement order, its peers the other VRRP nodes serving it.
 */
export class KeepalivedService {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly logger: Logger,
  ) {}

  /** The node's keepalived.conf, or null when the node has no VRRP settings (it renders no such file). */
  async render(node: ProxyNode): Promise<string | null> {
    if (node.vrrp === null) return null;
    const served = await repo.vrrpAddressesOf(this.db, node.name);
    const v4 = served.filter((a) => !a.address.includes(':'));
    const stored = await this.routersFor(
      node.group,
      v4.map((a) => a.address),
    );
    const routers: VrrpRouter[] = [];
    const notCovered: { address: string; reason: string }[] = [];
    for (const a of served) {
      const r = stored.get(a.address);
      if (a.address.includes(':'))
        notCovered.push({ address: a.address, reason: 'IPv6: VRRP version 2 carries IPv4 only' });
      else if (r === undefined)
        notCovered.push({ address: a.address, reason: `no free virtual_router_id in node group ${node.group}` });
      else
        routers.push({
          address: a.address,
          vrid: r.vrid,
          authPass: this.box.open(r.authSealed, authContext(node.group, a.address)),
          nodes: a.nodes,
        });
    }
    return renderKeepalived({
      node: node.name,
      interface: node.vrrp.interface,
      sourceAddress: node.vrrp.address,
      trackPidFile: node.vrrp.trackPidFile ?? defaultTrackPidFile(node.kind, node.configDir),
      instances: planVrrpInstances(node.name, routers),
      notCovered,
    });
  }

  /**
   * The group's routers for these addresses, allocating the missing ones: the lowest free VRID
   * and a new secret each, under a lock so two nodes' builds agree. When all 255 are taken, the
   * routers of addresses no VIP holds any more are freed first; an address still without one is
   * left out (logged), and keepalived does not move it.
   */
  private async routersFor(group: string, addresses: readonly string[]): Promise<Map<string, StoredVrrpRouter>> {
    const known = new Map((await repo.routersOf(this.db, group)).map((r) => [r.address, r]));
    if (addresses.every((a) => known.has(a))) return known;
    return this.db.transaction().execute(async (trx) => {
      await repo.lockRouters(trx);
      const current = new Map((await repo.routersOf(trx, group)).map((r) => [r.address, r]));
      let released = false;
      for (const address of addresses) {
        if (current.has(address)) continue;
        let vrid = freeVrid(new Set([...current.values()].map((r) => r.vrid)));
        if (vrid === null && !released) {
          released = true;
          if ((await repo.releaseUnusedRouters(trx, group)) > 0) {
            current.clear();
            for (const r of await repo.routersOf(trx, group)) current.set(r.address, r);
            vrid = freeVrid(new Set([...current.values()].map((r) => r.vrid)));
          }
        }
        if (vrid === null) {
          this.logger.error(
            { group, address, max: VRID_MAX },
            `no free VRRP virtual_router_id in node group ${group}: all ${VRID_MAX} are held by VIP addresses, so keepalived does not move ${address}. Delete unused VIPs, split the tenants over more node groups, or announce VIPs with BGP instead (docs/operating-nodes.md: VIP ownership and failover)`,
          );
          continue;
        }
        const router = { address, vrid, authSealed: this.box.seal(newAuthPass(), authContext(group, address)) };
        await repo.insertRouter(trx, group, router);
        current.set(address, router);
      }
      return current;
    });
  }
}

function newAuthPass(): string {
  let out = '';
  for (let i = 0; i < AUTH_LENGTH; i++) out += AUTH_ALPHABET[randomInt(AUTH_ALPHABET.length)];
  return out;
}
