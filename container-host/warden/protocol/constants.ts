/** Where wardend listens unless told otherwise (DESIGN §5). */
export const DEFAULT_SOCKET_PATH = '/var/run/dropwarden/warden.sock';
