// The chaos scenarios run after the main suite, one file at a time: each starts a whole cluster
// with fault proxies and measures availability, which must not compete with other tests for the
// machine's two cores.
export default {
  files: ['tests/chaos/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  timeout: '300s',
  workerThreads: false,
  concurrency: 1,
};
