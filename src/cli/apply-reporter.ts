import cliProgress from 'cli-progress';
import type { PlannedAction, TenantPlan } from './plan-manifest.js';

/** Where the CLI writes; tests and the progress bar need them apart. */
export interface Output {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
}

const PAST: Record<PlannedAction['op'], string> = { create: 'created', update: 'updated', delete: 'deleted' };

/** `create pool a/web (members: +2)`: the plan's words, also used for its past tense. */
export function describeAction(action: PlannedAction, tense: 'plan' | 'done' = 'plan'): string {
  const verb = tense === 'plan' ? action.op : PAST[action.op];
  return `${verb} ${action.kind} ${action.name}${action.detail ? ` (${action.detail})` : ''}`;
}

export function describeSource(plan: TenantPlan): string {
  return `${plan.tenant} (${plan.source.file}[${plan.source.index}])`;
}

/**
 * Reports an apply as it runs. On a terminal, with several tenants, a progress bar over every
 * action (cli-progress); elsewhere (CI logs, pipes) one line per object, since a bar redrawn
 * with carriage returns is unreadable in a log file. Errors always go to stderr, after the bar.
 */
export class ApplyReporter {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly held: string[] = [];

  constructor(
    private readonly out: Output,
    options: { totalActions: number; tenants: number },
  ) {
    const terminal = out.stdout.isTTY === true;
    this.bar =
      terminal && options.tenants > 1 && options.totalActions > 0
        ? new cliProgress.SingleBar(
            {
              format: 'applying [{bar}] {value}/{total} {object}',
              stream: out.stdout,
              // Only ever built on a terminal; never let it write escape codes into a pipe.
              noTTYOutput: false,
              hideCursor: true,
              clearOnComplete: true,
            },
            cliProgress.Presets.shades_classic,
          )
        : null;
    this.bar?.start(options.totalActions, 0, { object: '' });
  }

  tenant(plan: TenantPlan): void {
    if (plan.actions.length === 0) this.line(`${describeSource(plan)}: unchanged`);
    else this.line(describeSource(plan));
    for (const note of plan.notes) this.note(note);
  }

  note(text: string): void {
    this.line(`  note: ${text}`);
  }

  started(action: PlannedAction): void {
    this.bar?.update({ object: `${action.kind} ${action.name}` });
  }

  done(action: PlannedAction, revision: number | null): void {
    this.bar?.increment();
    this.line(`  ${describeAction(action, 'done')}${revision !== null ? ` at revision ${revision}` : ''}`);
  }

  failed(action: PlannedAction, message: string): void {
    this.bar?.increment();
    this.error(`${describeAction(action)} failed: ${message}`);
  }

  /** Actions not run because an earlier one of the tenant failed. */
  skipped(count: number): void {
    if (count > 0) this.bar?.increment(count);
  }

  error(text: string): void {
    if (this.bar) this.held.push(text);
    else this.out.stderr.write(`switchyard: ${text}\n`);
  }

  /** Stops the bar, then prints what it held back and the summary. */
  finish(summary: string): void {
    this.bar?.stop();
    for (const text of this.held) this.out.stderr.write(`switchyard: ${text}\n`);
    this.out.stdout.write(`${summary}\n`);
  }

  private line(text: string): void {
    if (!this.bar) this.out.stdout.write(`${text}\n`);
  }
}
