// A minimal web app: answers every request with a greeting on $PORT.
const http = require('node:http');

http
  .createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end(`Hello from dropwarden! (node ${process.version})\n`);
  })
  .listen(Number(process.env.PORT || 8080));
