// A Node.js program that knows nothing of the supervisor: it calls listen(PORT, HOST)
// itself (run under --adopt-bind). SIGTERM: stop accepting, finish requests, exit 0.
const http = require('http');
const [port, host] = [Number(process.argv[2]), process.argv[3] || '127.0.0.1'];
const server = http.createServer((req, res) => {
  res.end(`pid=${process.pid}\n`);
});
server.listen(port, host);
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
