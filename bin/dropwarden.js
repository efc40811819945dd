#!/usr/bin/env node
// The sources are TypeScript run by Node 22's built-in type stripping (no build step);
// the package pins Node 22 (devDependency `node`), which `npm run`/`npx` put first on PATH.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(
    `dropwarden needs Node.js >= 22.18 (this is ${process.version}). ` +
      'Run it through npm (`npm start`, `npx dropwarden ...`), which uses the Node 22 the package installs.',
  );
  process.exit(2);
}
// wardend runs for days beside hundreds of containers, so it keeps its RSS small: it loads only
// its own command (not the stager's, the emulator's, …); Node's type stripper (WebAssembly) gets
// baseline-compiled code only (--liftoff-only: ~17 MB less; wardend has no other wasm); and V8
// favours memory over speed (--optimize-for-size: ~10 MB less at 200 containers, no measurable
// latency cost: wardend mostly waits on processes). See BENCHMARKS.md, "Warden I".
const lean = process.argv[2] === 'wardend';
if (lean) (await import('node:v8')).setFlagsFromString('--liftoff-only --optimize-for-size');
const { main } = await import('../cli/main.ts');
await main(process.argv, lean ? [(await import('../cli/commands/wardend.ts')).wardendCommand] : undefined);
