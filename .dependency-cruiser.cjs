/**
 * Switchyard's layers, as data. An import may only point inward:
 *
 *   util  ←  domain  ←  db · render · fleet · pki  ←  services  ←  jobs · api  ←  cli · main
 *
 * `util` is generic and knows nothing of Switchyard; `domain` is pure (no I/O, no clock, no logger),
 * so it can be tested without a database, a proxy or a timer. `npm run lint:layers` checks this and
 * `.ci/run` runs it; a rule fails with the name below, which says what moved the wrong way.
 */
const net = '^(net|node:net)$';
const io = '^(fs|node:fs|fs/promises|node:fs/promises|tls|node:tls|http|node:http|https|node:https|http2|node:http2|dgram|node:dgram|dns|node:dns|child_process|node:child_process|worker_threads|node:worker_threads|cluster|node:cluster)$';
const ioPackages = '^node_modules/(pg|pg-pool|kysely|express|axios|node-cron|pino|prom-client|@electric-sql/pglite)/';
// The layer check also runs on small probe trees under test/fixtures/layers/ to prove each rule fires.
const src = '^(?:test/fixtures/layers/)?src/';

const inward = (name, from, forbidden, comment) => ({
  name,
  comment,
  severity: 'error',
  from: { path: from },
  to: { path: forbidden },
});

module.exports = {
  forbidden: [
    inward('util-is-generic', src + 'util/', src + '(?!util/)', 'src/util holds generic helpers: it imports nothing from Switchyard.'),
    inward(
      'domain-is-pure',
      src + 'domain/',
      src + '(?!domain/|util/)',
      'src/domain is pure: it may import only src/domain and src/util (no db, render, fleet, services, logger, metrics or config).',
    ),
    {
      name: 'domain-does-no-io',
      comment: 'src/domain does no I/O: no file system, network, processes, database or HTTP packages.',
      severity: 'error',
      from: { path: src + 'domain/' },
      to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'], path: [io, ioPackages] },
    },
    {
      name: 'domain-uses-net-only-to-parse-addresses',
      comment: 'src/domain/ip.ts uses node:net for isIP, a pure parser; no other domain module needs node:net.',
      severity: 'error',
      from: { path: src + 'domain/', pathNot: src + 'domain/ip\\.ts$' },
      to: { dependencyTypes: ['core'], path: net },
    },
    {
      name: 'util-does-no-io',
      comment: 'src/util does no I/O.',
      severity: 'error',
      from: { path: src + 'util/' },
      to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'], path: [io, net, ioPackages] },
    },
    inward(
      'adapters-do-not-reach-up',
      src + '(db|render|fleet|pki)/',
      src + '(services|jobs|api|cli)/|' + src + 'main\\.ts$',
      'db, render, fleet and pki are adapters: they may use domain and util, never services, jobs, api, cli or main.',
    ),
    inward(
      'adapters-are-independent',
      src + '(db|render|pki)/',
      src + 'fleet/',
      'db, render and pki do not depend on the fleet adapter; services compose them.',
    ),
    inward(
      'services-do-not-reach-up',
      src + 'services/',
      src + '(jobs|api|cli)/|' + src + 'main\\.ts$',
      'services are used by jobs, api and cli, never the other way round.',
    ),
    inward('jobs-do-not-reach-up', src + 'jobs/', src + '(api|cli)/|' + src + 'main\\.ts$', 'jobs are wired by main; they do not use the HTTP api or the CLI.'),
    inward('api-does-not-reach-up', src + 'api/', src + '(jobs|cli)/|' + src + 'main\\.ts$', 'the HTTP api calls services; it does not drive jobs or the CLI.'),
    {
      name: 'no-circular',
      comment:
        'An import cycle makes load order matter and hides which module owns a concept. Cycles made only of ' +
        'type imports are erased at compile time and allowed (a node names its kind, a kind names its node).',
      severity: 'error',
      from: { path: src },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'tests-are-not-imported',
      comment: 'Nothing in src imports test code.',
      severity: 'error',
      from: { path: src },
      to: { path: '^test/', pathNot: '^test/fixtures/layers/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
