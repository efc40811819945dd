/**
 * A vitest reporter: in CI (CI=true) or with DROPWARDEN_NO_SKIPS=1, a test that did not run
 * fails the run, unless test/skip-allowlist.json names it with the reason it cannot run on this
 * kind of machine. Suites skip where a host feature is missing (skipIf): locally that is a
 * warning, in CI a failure, so a machine that lacks something can never go green quietly.
 */
import { readFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

interface Allowed {
  /** The test's full name (suite names and its own, joined by " > "), or a prefix of it ending in " > ". */
  test: string;
  why: string;
}

const ALLOWLIST = new URL('../skip-allowlist.json', import.meta.url);

export default class SkipGuard implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const strict = process.env.CI === 'true' || process.env.DROPWARDEN_NO_SKIPS === '1';
    const allowed = JSON.parse(readFileSync(ALLOWLIST, 'utf8')) as Allowed[];
    const skipped: string[] = [];
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        if (test.result().state !== 'skipped') continue;
        const name = `${module.moduleId.replace(`${process.cwd()}/`, '')} > ${test.fullName}`;
        if (!allowed.some((a) => name === a.test || (a.test.endsWith(' > ') && name.startsWith(a.test)))) skipped.push(name);
      }
    }
    if (!skipped.length) return;
    const list = skipped.map((n) => `  - ${n}`).join('\n');
    if (strict) {
      process.stderr.write(`\nskip-guard: ${skipped.length} test(s) did not run and are not on test/skip-allowlist.json; each one's suite printed why:\n${list}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`\nskip-guard: ${skipped.length} test(s) skipped (in CI this fails the run):\n${list}\n`);
    }
  }
}
