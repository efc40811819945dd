import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'cdk/**/*.test.ts'],
    exclude: [
      'node_modules/**',
      'test/apps/**',
      'test/bench/**',
      // The real-kernel cgroup v2 checks: `npm run test:vm` runs them in its cgroup2-only guest.
      ...(process.env.DROPWARDEN_EXPECT_CGROUP2 === '1' ? [] : ['test/warden/linux/cgroup-v2-kernel.test.ts']),
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // skip-guard: in CI a skipped test fails the run unless test/skip-allowlist.json says why it must skip.
    reporters: ['default', './test/support/skip-guard.ts'],
    // fauxqs loads node:sqlite (still "experimental" on Node 22) even with persistence off.
    execArgv: ['--disable-warning=ExperimentalWarning'],
    env: {
      // The stager's structured logs are for operators; tests read results, not logs.
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
    },
  },
});
