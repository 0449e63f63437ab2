import type { NodeKind } from '../../domain/node.js';
import type { NodeSnapshot, RenderedFiles, SegmentedFiles } from '../../domain/snapshot.js';
import { renderHaproxy, renderHaproxySegments } from '../../render/haproxy.js';
import { renderNginx, renderNginxSegments } from '../../render/nginx.js';
import { validateHaproxySnapshot } from '../../render/validate-haproxy.js';
import { validateNginx } from '../../render/validate-nginx.js';

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly message: string };

/** A snapshot's files, or why the renderer refuses it (a shared listener, a dangling name). */
export type RenderAttempt =
  | { readonly ok: true; readonly segments: SegmentedFiles }
  | { readonly ok: false; readonly message: string };

/** What the config pipeline needs of a proxy kind: render a snapshot, and have the real binary judge it. */
export interface KindRenderer {
  render(snapshot: NodeSnapshot): RenderedFiles;
  /** `render` before its files are joined: what is stored, piece by piece (see SegmentedFiles). */
  renderSegments(snapshot: NodeSnapshot): SegmentedFiles;
  /** Renders for a scratch directory and runs the real binary there. */
  validate(snapshot: NodeSnapshot): Promise<Verdict>;
}

/**
 * Builds run in the background of runtime pushes (which make a change live in milliseconds); on
 * a small control-plane host a burst of `haproxy -c` runs would otherwise take the CPU from them
 * (3 nodes on 2 cores, 100 back-to-back weight changes: runtime p50 21 → 14 ms from this alone).
 */
const VALIDATOR_NICENESS = 19;

export const RENDERERS: Readonly<Record<NodeKind, KindRenderer>> = {
  haproxy: {
    render: renderHaproxy,
    renderSegments: renderHaproxySegments,
    validate: async (snapshot) => {
      const v = await validateHaproxySnapshot(snapshot, { niceness: VALIDATOR_NICENESS });
      return v.ok ? { ok: true } : { ok: false, message: v.message };
    },
  },
  nginx: {
    render: renderNginx,
    renderSegments: renderNginxSegments,
    validate: async (snapshot) => {
      const v = await validateNginx(renderNginx(snapshot), snapshot.node.configDir);
      return v.ok ? { ok: true } : { ok: false, message: v.message };
    },
  },
};

/** The snapshot's files, or why the renderer refuses it. */
export function renderSegmentsOrRefusal(renderer: KindRenderer, snapshot: NodeSnapshot): RenderAttempt {
  try {
    return { ok: true, segments: renderer.renderSegments(snapshot) };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** Render and validate; a render-time refusal counts as a failed validation with its message. */
export async function renderAndValidate(renderer: KindRenderer, snapshot: NodeSnapshot): Promise<Verdict> {
  try {
    renderer.render(snapshot);
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
  return renderer.validate(snapshot);
}
