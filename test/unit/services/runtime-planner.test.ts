import { describe, expect, it } from 'vitest';
import { MIN_LANED_BATCH } from '../../../src/fleet/runtime-api/laned-executor.js';
import type { RuntimeCommand } from '../../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult, RuntimeExecutor } from '../../../src/fleet/runtime-api/runtime-executor.js';
import { RuntimePlanner } from '../../../src/services/runtime-planner.js';

const STATE_HEADER =
  '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port';

/** A node's Runtime API holding `servers` servers in one backend; counts warm() calls. */
function node(servers: number): RuntimeExecutor & { warmed: number } {
  const state = [
    STATE_HEADER,
    ...Array.from(
      { length: servers },
      (_, i) => `3 be_t_web ${i + 1} s${i} 10.0.0.1 2 0 1 1 5 0 0 0 0 0 0 0 - 80 - 0 0 - - 0`,
    ),
  ].join('\n');
  const reply = (c: RuntimeCommand): CommandResult => {
    if (c.kind === 'show-servers-state') return { status: 'ok', command: c, output: state };
    if (c.kind === 'show-stat')
      return {
        status: 'ok',
        command: c,
        output:
          '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type\nbe_t_web,BACKEND,0,0,0,0,1,0,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,1,0,,1,3,0,,0,,1',
      };
    return { status: 'ok', command: c, output: '' };
  };
  const executor = {
    warmed: 0,
    async execute(commands: readonly RuntimeCommand[]) {
      return commands.map(reply);
    },
    warm() {
      executor.warmed += 1;
    },
  };
  return executor;
}

describe('RuntimePlanner', () => {
  const endpoint = { host: '127.0.0.1', port: 9999 };
  const target = { mapFile: '/etc/haproxy/maps/tenant-caps.map', certificateFiles: [] };

  it('connects the extra lanes while the snapshot loads, once a node has shown it holds enough servers for a laned batch', async () => {
    const big = node(MIN_LANED_BATCH);
    const small = node(MIN_LANED_BATCH - 1);
    const planner = new RuntimePlanner(
      { client: (name) => (name === 'big' ? big : small) },
      { drainTimeoutMs: 1000, observeTimeoutMs: 1000 },
    );
    // First passes: nothing is known of either node yet.
    expect((await planner.startObservation('big', endpoint, target).observation).ok).toBe(true);
    expect((await planner.startObservation('small', endpoint, target).observation).ok).toBe(true);
    expect([big.warmed, small.warmed]).toEqual([0, 0]);
    // Later passes: the large node's lanes are opened ahead of its batch; the small node never needs them.
    await planner.startObservation('big', endpoint, target).observation;
    await planner.startObservation('small', endpoint, target).observation;
    expect([big.warmed, small.warmed]).toEqual([1, 0]);
  });
});
