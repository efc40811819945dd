export * from './service.ts';
export * from './config.ts';
export * from './server.ts';
export * from './connection.ts';
export * from './health.ts';
export * from './daemon.ts';
export * from './handles.ts';
export * from './socket-group.ts';
