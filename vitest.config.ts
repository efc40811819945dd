import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'functions/**/*.test.ts', 'plugins/**/*.test.ts', 'container-host/**/*.test.ts', 'cdk/**/*.test.ts', 'cli/**/*.test.ts', 'local/**/*.test.ts', 'lib/**/*.test.ts', 'contracts/**/*.test.ts'],
    exclude: ['node_modules/**', 'test/apps/**', 'test/bench/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
