require('node:http').createServer((q, r) => r.end('x')).listen(process.env.PORT);
