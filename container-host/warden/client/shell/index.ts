export * from './tokenize.ts';
export * from './request-args.ts';
export * from './format.ts';
export * from './run-request.ts';
export * from './shell.ts';
