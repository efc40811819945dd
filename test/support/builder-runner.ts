/**
 * Run by test/stager/builder-function.test.ts inside a pid namespace of its own (its reset kills
 * what started after it): the builder function's handler, as Lambda would call it, on the job in
 * argv[2], emptying argv[3] as its /tmp; prints the report.
 */
import { readFileSync } from 'node:fs';
import { createBuilderHandler } from '../../functions/builder/handler.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';

const handler = createBuilderHandler({ config: stagerConfigFromEnv(process.env), tmpDir: process.argv[3] });
const report = await handler(JSON.parse(readFileSync(process.argv[2], 'utf8')));
console.log(JSON.stringify(report));
