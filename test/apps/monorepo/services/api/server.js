require('node:http').createServer((req, res) => res.end('Hello from services/api\n')).listen(Number(process.env.PORT));
