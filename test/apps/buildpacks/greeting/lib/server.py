import http.server
import os

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open("greeting.out") as f:
            body = f.read() + "profile.d: %s\nconfig var: %s\n" % (os.environ.get("PROFILE_D_SAYS"), os.environ.get("GREETING_FROM"))
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
