export * from './types.ts';
export * from './errors.ts';
export * from './message-types.ts';
export * from './framing.ts';
export * from './codec.ts';
export * from './constants.ts';
