/**
 * Why a call on a node's runtime channel failed, as a code the caller can branch on; the message
 * says what happened and what to do next, and is what node status and the plan show.
 * - `unavailable`: no client certificate yet, nothing listening, the network, or the client closed.
 * - `tls`: the handshake failed or the node's certificate is not one Switchyard issued for the address dialled.
 * - `refused`: the node answered but refused the control plane (403, or nginx's 400 for a client certificate).
 * - `timeout`: no complete reply within the time allowed (connecting, or the whole exchange).
 * - `protocol`: a reply the control plane cannot use (unknown path, a 400 naming a field, an invalid body).
 * - `full`: a shared dictionary on the node is full (507).
 */
export type NginxRuntimeFailure = 'unavailable' | 'tls' | 'refused' | 'timeout' | 'protocol' | 'full';

export class NginxRuntimeError extends Error {
  override readonly name = 'NginxRuntimeError';

  constructor(
    readonly failure: NginxRuntimeFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
