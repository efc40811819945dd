const http = require('node:http');
http
  .createServer((req, res) => res.end(`Hello from node (${process.env.NODE_ENV})\n`))
  .listen(Number(process.env.PORT), () => console.log(`listening on ${process.env.PORT}`));
