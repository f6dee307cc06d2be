/** demo/: `meshd demo` and the pieces it (and the tests and benches) use: sample apps, SOCKS5 client, child daemons. */
export { runDemo, type DemoOptions } from './runner.js';
export { runDemoChecks, type CheckResult, type RunningDemo } from './check.js';
export { buildDemoPlan, type DemoPlan, type DemoApp, type DemoWaypoint } from './plan.js';
export { ChildDaemon, spawnMeshd, type LogLine, type SpawnOptions } from './children.js';
export {
  startEchoApp,
  startFrontendApp,
  startTcpEcho,
  type RunningApp,
  type EchoOptions,
  type FrontendOptions,
} from './sample-apps.js';
export { Socks5Error, parseTarget, socksAgent, socksConnect, type SocksProxy } from './socks5-client.js';
