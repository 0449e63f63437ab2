import { ApiError, type ApiClient, type ApiRequest } from './api-client.js';
import { classifyChange, describeClassification, type Classification, type FleetPlanView } from './classify-change.js';
import type { PlannedAction } from './plan-manifest.js';

/** What the server predicts for one planned action. */
export interface Prediction {
  /** `(runtime)`, `(reload)`, `(after earlier steps)`, …; null when the server could not say. */
  readonly label: string | null;
  /** The server would refuse the write (a dry run answers as the real write would). */
  readonly failure: ApiError | null;
}

interface DryRunAnswer {
  readonly dryRun: true;
  readonly changed: boolean;
  readonly plan: FleetPlanView;
}

/**
 * Asks the server, with `?dryRun=true`, how each planned write would reach the proxies. Optional:
 * `detect` finds out from the OpenAPI document whether this server takes dry runs, so an older one
 * is never sent a write it would not recognise as a dry run.
 */
export class ServerDryRun {
  /** `GET /v1/plan`: undefined until asked, null when this token may not read it. */
  private fleetPlan: FleetPlanView | null | undefined;
  private readonly baselines = new Map<string, FleetPlanView | null>();

  private constructor(private readonly client: ApiClient) {}

  static async detect(client: ApiClient): Promise<ServerDryRun | null> {
    try {
      const doc = await client.get<{ paths?: Record<string, Record<string, { parameters?: { name?: string }[] }>> }>(
        '/openapi.json',
      );
      const writes = Object.values(doc.body.paths ?? {}).flatMap((ops) =>
        Object.entries(ops)
          .filter(([m]) => m !== 'get')
          .map(([, op]) => op),
      );
      const supported =
        writes.length > 0 && writes.some((op) => (op.parameters ?? []).some((p) => p.name === 'dryRun'));
      return supported ? new ServerDryRun(client) : null;
    } catch {
      return null;
    }
  }

  /** Predicts one action of `tenant`'s plan; never throws (a dry run is advice, not a gate). */
  async predict(tenant: string, tenantExists: boolean, action: PlannedAction): Promise<Prediction> {
    if (action.needsEarlierCreate) return { label: '(after earlier steps)', failure: null };
    // A create's later requests (a new pool's members) need the object the first one creates.
    const requests = action.op === 'create' ? action.requests.slice(0, 1) : action.requests;
    const baseline = await this.baseline(tenant, tenantExists);
    const found: Classification[] = [];
    let fleetSize = 0;
    for (const request of requests) {
      let answer: DryRunAnswer;
      try {
        answer = await this.send(request);
      } catch (err) {
        if (err instanceof ApiError) return { label: null, failure: err };
        return { label: null, failure: null };
      }
      fleetSize = answer.plan.nodes.length;
      found.push(classifyChange(baseline, answer.plan, answer.changed));
    }
    const worst =
      found.find((c) => c.change === 'unrenderable') ??
      found.find((c) => c.change === 'reload') ??
      found.find((c) => c.change === 'runtime') ??
      found[0];
    return { label: worst ? describeClassification(worst, fleetSize) : null, failure: null };
  }

  private async send(request: ApiRequest): Promise<DryRunAnswer> {
    const { idempotencyKey: _key, ...rest } = request;
    const res = await this.client.send<DryRunAnswer>({ ...rest, query: { ...request.query, dryRun: 'true' } });
    if (res.body?.dryRun !== true) throw new Error('the server did not answer as a dry run');
    return res.body;
  }

  /**
   * The plan before any change, to tell which nodes a change moves: `GET /v1/plan` needs fleet
   * access; a tenant's own token gets the same from a dry run of an empty patch of its tenant.
   */
  private async baseline(tenant: string, tenantExists: boolean): Promise<FleetPlanView | null> {
    if (this.fleetPlan === undefined) {
      this.fleetPlan = await this.client.get<FleetPlanView>('/v1/plan').then(
        (a) => a.body,
        () => null,
      );
    }
    if (this.fleetPlan !== null) return this.fleetPlan;
    if (!this.baselines.has(tenant)) {
      const own = tenantExists
        ? await this.send({ method: 'PATCH', path: `/v1/tenants/${tenant}`, body: {} }).then(
            (a) => a.plan,
            () => null,
          )
        : null;
      this.baselines.set(tenant, own);
    }
    return this.baselines.get(tenant)!;
  }
}
