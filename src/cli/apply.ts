import type { Command } from 'commander';
import { ApiError, clientFromEnv, type ApiClient, type ApiRequest } from './api-client.js';
import { ApplyReporter, describeAction, describeSource, type Output } from './apply-reporter.js';
import { EXIT, worstExit, type ExitCode } from './exit-codes.js';
import { loadManifests } from './load-manifests.js';
import { formatIssue } from './manifest.js';
import { planManifest, type PlannedAction, type TenantPlan } from './plan-manifest.js';
import { runCommand } from './run-command.js';
import { ServerDryRun } from './server-dry-run.js';
import { fetchTenantState, type TenantState } from './tenant-state.js';

export interface ApplyOptions {
  /** Files, or directories of *.yaml / *.yml files. */
  readonly files: readonly string[];
  readonly dryRun: boolean;
  readonly prune: boolean;
}

interface Planned {
  readonly plan: TenantPlan;
  readonly state: TenantState;
}

export const APPLY_HELP = `
Each YAML document declares one tenant (apiVersion: switchyard/v1, kind: Tenant) with its
certificates (by file, relative to the YAML file), pools and members, VIPs and routes.
Environment: SWITCHYARD_URL (default http://127.0.0.1:8080), SWITCHYARD_TOKEN, SWITCHYARD_RETRIES.
Exit codes: 0 applied or nothing to do, 1 invalid input (file, schema, 400), 2 conflict or refused
(401/403/404/409/412), 3 server or network error.`;

export function registerApplyCommand(program: Command, out: Output = process): void {
  program
    .command('apply')
    .description(
      'make tenants match YAML manifests: create and update their objects (and with --prune delete the rest)',
    )
    .requiredOption('-f, --file <path...>', 'a YAML file or a directory of *.yaml/*.yml files (repeatable)')
    .option('--dry-run', 'print the plan per object and change nothing')
    .option('--prune', 'also delete the objects of these tenants that the files no longer name (never other tenants)')
    .addHelpText('after', APPLY_HELP)
    .action(async (opts: { file: string[]; dryRun?: boolean; prune?: boolean }) => {
      process.exitCode = await runCommand(out, () =>
        applyManifests(
          { files: opts.file, dryRun: opts.dryRun === true, prune: opts.prune === true },
          () => clientFromEnv(),
          out,
        ),
      );
    });
}

/**
 * `switchyard apply`: validates every file, reads every tenant's state and plans all of them
 * before the first write, so invalid input or a plan that cannot work changes nothing. Then
 * applies tenant by tenant; a tenant whose write is refused stops there, the others go on, and a
 * server or network failure stops the run. Returns the exit code.
 */
export async function applyManifests(options: ApplyOptions, connect: () => ApiClient, out: Output): Promise<ExitCode> {
  const loaded = await loadManifests(options.files);
  if (loaded.issues.length > 0) {
    for (const issue of loaded.issues) out.stderr.write(`switchyard: ${formatIssue(issue)}\n`);
    out.stderr.write(
      `switchyard: nothing was applied: fix the ${count(loaded.issues.length, 'problem')} above and re-run\n`,
    );
    return EXIT.invalidInput;
  }
  const client = connect();
  const planned: Planned[] = [];
  for (const desired of loaded.tenants) {
    const state = await fetchTenantState(client, desired.id);
    planned.push({ state, plan: planManifest(desired, state, { prune: options.prune }) });
  }
  const problems = planned.flatMap(({ plan }) => plan.problems.map((p) => ({ plan, ...p })));
  if (problems.length > 0) {
    for (const p of problems)
      out.stderr.write(`switchyard: ${p.plan.source.file}[${p.plan.source.index}] ${p.path}: ${p.message}\n`);
    out.stderr.write(
      `switchyard: nothing was applied: fix the ${count(problems.length, 'problem')} above and re-run\n`,
    );
    return EXIT.conflict;
  }
  return options.dryRun ? printPlan(planned, client, out) : execute(planned, client, out);
}

async function printPlan(planned: readonly Planned[], client: ApiClient, out: Output): Promise<ExitCode> {
  const server = await ServerDryRun.detect(client);
  const codes: ExitCode[] = [];
  const total = tally(planned.flatMap((p) => p.plan.actions));
  if (!server && total.all > 0)
    out.stdout.write('note: this control plane does not take ?dryRun=true, so runtime vs reload is not predicted\n');
  for (const { plan, state } of planned) {
    out.stdout.write(plan.actions.length === 0 ? `${describeSource(plan)}: unchanged\n` : `${describeSource(plan)}\n`);
    for (const note of plan.notes) out.stdout.write(`  note: ${note}\n`);
    for (const action of plan.actions) {
      const prediction = server ? await server.predict(plan.tenant, state.tenant !== null, action) : null;
      const label = prediction?.label ? ` ${prediction.label}` : '';
      out.stdout.write(`  ${describeAction(action)}${label}\n`);
      if (prediction?.failure) {
        out.stderr.write(`switchyard: ${describeAction(action)} would fail: ${prediction.failure.message}\n`);
        codes.push(prediction.failure.exitCode);
      }
    }
  }
  const tenants = planned.filter((p) => p.plan.actions.length > 0).length;
  out.stdout.write(
    total.all === 0
      ? `unchanged: ${count(planned.length, 'tenant')} already ${planned.length === 1 ? 'matches' : 'match'}; nothing to do (dry run)\n`
      : `dry run: ${total.create} to create, ${total.update} to update, ${total.delete} to delete in ${count(tenants, 'tenant')}; nothing was changed\n`,
  );
  return worstExit(codes);
}

async function execute(planned: readonly Planned[], client: ApiClient, out: Output): Promise<ExitCode> {
  const actions = planned.flatMap((p) => p.plan.actions);
  const reporter = new ApplyReporter(out, { totalActions: actions.length, tenants: planned.length });
  const done: PlannedAction[] = [];
  const codes: ExitCode[] = [];
  let revision: number | null = null;
  let stoppedAt: number | null = null;
  for (const [t, { plan }] of planned.entries()) {
    reporter.tenant(plan);
    for (const [i, action] of plan.actions.entries()) {
      reporter.started(action);
      try {
        const { revision: rev, first: answer } = await send(client, action);
        revision = rev === null ? revision : Math.max(rev, revision ?? 0);
        done.push(action);
        reporter.done(action, rev);
        if (action.kind === 'tenant' && (answer as { state?: string } | null)?.state === 'pending_approval') {
          reporter.note(
            `tenant ${plan.tenant} is pending approval: it renders nothing until an admin approves it (POST /v1/tenants/${plan.tenant}/approve)`,
          );
        }
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        reporter.failed(action, err.message);
        reporter.skipped(plan.actions.length - i - 1);
        codes.push(err.exitCode);
        break;
      }
    }
    // The control plane is failing or out of reach: every other tenant would fail the same way.
    if (codes.includes(EXIT.serverError)) {
      stoppedAt = t + 1;
      break;
    }
  }
  const applied = tally(done);
  const changedTenants = planned.filter((p) => p.plan.actions.length > 0).length;
  let summary: string;
  if (codes.length > 0) {
    const notRun =
      stoppedAt !== null && stoppedAt < planned.length
        ? `; ${count(planned.length - stoppedAt, 'tenant')} not tried`
        : '';
    summary = `stopped with errors: ${count(applied.all, 'change')} applied (${applied.create} created, ${applied.update} updated, ${applied.delete} deleted), ${count(codes.length, 'tenant')} failed${notRun}; see the errors above`;
  } else if (actions.length === 0) {
    summary = `unchanged: ${count(planned.length, 'tenant')} already ${planned.length === 1 ? 'matches' : 'match'}; nothing to do`;
  } else {
    const unchanged = planned.length - changedTenants;
    summary =
      `applied ${count(applied.all, 'change')} (${applied.create} created, ${applied.update} updated, ${applied.delete} deleted) ` +
      `to ${count(changedTenants, 'tenant')}${unchanged > 0 ? `, ${unchanged} unchanged` : ''}` +
      (revision !== null ? `; the control plane is at revision ${revision}` : '');
  }
  reporter.finish(summary);
  return worstExit(codes);
}

/** Sends an action's requests in order; returns the last revision committed and the first answer (the object). */
async function send(client: ApiClient, action: PlannedAction): Promise<{ revision: number | null; first: unknown }> {
  let revision: number | null = null;
  let first: unknown = null;
  for (const [i, request] of action.requests.entries()) {
    const answer = await sendOne(client, request);
    if (i === 0) first = answer;
    const rev = (answer as { revision?: unknown } | null)?.revision;
    if (typeof rev === 'number') revision = rev;
  }
  return { revision, first };
}

async function sendOne(client: ApiClient, request: ApiRequest): Promise<unknown> {
  try {
    return (await client.send(request)).body;
  } catch (err) {
    // Gone already (deleted by a retry whose answer was lost, or by someone else): what we wanted.
    if (request.method === 'DELETE' && err instanceof ApiError && err.failure === 'not-found') return null;
    throw err;
  }
}

function tally(actions: readonly PlannedAction[]): { create: number; update: number; delete: number; all: number } {
  const n = (op: PlannedAction['op']) => actions.filter((a) => a.op === op).length;
  return { create: n('create'), update: n('update'), delete: n('delete'), all: actions.length };
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
