/**
 * The static file server bundled into static droplets (`support/static_server.py`): Python's
 * standard library only, so the run host needs python3 and nothing else. It serves the app
 * directory with index.html for directories, no directory listings and no dotfiles (a site's
 * .git or .env stays private). Kept as text so the stager's bundle carries it.
 */
export const STATIC_SERVER_FILE = 'static_server.py';

export const STATIC_SERVER = `"""Serves the current directory as a static site on $PORT.

No directory listings, no dotfiles; index.html for directories.
Written into the droplet by dropwarden's static plugin.
"""
import os
import signal
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class Handler(SimpleHTTPRequestHandler):
    def send_head(self):
        parts = unquote(urlsplit(self.path).path).split("/")
        if any(p.startswith(".") for p in parts if p):
            self.send_error(404, "Not Found")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404, "Not Found")
        return None


def main():
    port = int(os.environ.get("PORT", "8080"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ThreadingHTTPServer.allow_reuse_address = True
    with ThreadingHTTPServer(("0.0.0.0", port), Handler) as httpd:
        print("Serving static files on port %d" % port, flush=True)
        httpd.serve_forever()


if __name__ == "__main__":
    main()
`;
