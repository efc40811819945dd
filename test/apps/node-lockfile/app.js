const greet = require('greet');
require('node:http').createServer((req, res) => res.end(greet('node'))).listen(Number(process.env.PORT));
