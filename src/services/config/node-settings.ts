import type { ProxyNode } from '../../domain/node.js';
import type { NodeSettings } from '../../domain/snapshot.js';

/** The settings of a registered node that its config is rendered with. */
export function nodeSettingsOf(node: ProxyNode): NodeSettings {
  return {
    name: node.name,
    kind: node.kind,
    runtimeAddress: node.runtimeAddress,
    masterAddress: node.masterAddress,
    socketDir: node.socketDir,
    capacity: node.capacity,
    configDir: node.configDir,
  };
}
