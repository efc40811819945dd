/**
 * The WSGI server bundled into python droplets (`support/wsgi_server.py`): the standard
 * library's wsgiref with a thread per request, so the run host needs python3 and nothing else.
 * Kept as text in a module so the stager's bundle carries it without extra files.
 */
export const WSGI_SERVER_FILE = 'wsgi_server.py';

export const WSGI_SERVER = `"""Serves a WSGI callable with the standard library.

Usage: python3 wsgi_server.py MODULE:CALLABLE   (from the app's directory; port from $PORT)
Written into the droplet by dropwarden's wsgi plugin.
"""
import importlib
import os
import signal
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("%s - %s\\n" % (self.address_string(), format % args))


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "wsgi:application"
    module_name, _, attr = target.partition(":")
    sys.path.insert(0, os.getcwd())
    app = getattr(importlib.import_module(module_name), attr or "application")
    port = int(os.environ.get("PORT", "8080"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with make_server("0.0.0.0", port, app, server_class=ThreadingWSGIServer, handler_class=Handler) as httpd:
        print("Serving %s on port %d" % (target, port), flush=True)
        httpd.serve_forever()


if __name__ == "__main__":
    main()
`;
