require('node:http').createServer((req, res) => res.end('probed\n')).listen(Number(process.env.PORT));
