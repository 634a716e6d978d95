#!/usr/bin/env node
// node_worker — a supervisor test worker on Node's standard library only.
//
// Serves GET / with "pid=<pid> gen=<gen>\n" (HTTP/1.1, keep-alive) on the
// listener inherited as fd 3, and drains on SIGTERM: stop accepting, answer
// in-flight requests with Connection: close, close idle connections, exit 0.
//
// No READY=1: Node's standard library cannot send unix datagrams (dgram is
// UDP only), so run this worker with the supervisor's time-based readiness
// (`--ready delay`), not `--ready notify`.
'use strict';

const http = require('node:http');
const net = require('node:net');

const IDLE_GRACE_MS = 200;   // an idle keep-alive connection may live this long once draining
const LINGER_MS = 1000;      // how long to wait for the client's FIN after ours
const SAFETY_EXIT_MS = 10000;

const pid = process.pid;
const gen = process.env.SUPERVISOR_GENERATION || '0';
const log = (msg) => process.stderr.write(`node_worker pid=${pid} gen=${gen} ${msg}\n`);

if (process.env.LISTEN_PID !== String(pid) || !(Number(process.env.LISTEN_FDS) >= 1)) {
  process.stderr.write('node_worker: no listening socket: run me under the supervisor (LISTEN_FDS)\n');
  process.exit(2);
}

let draining = false;
let drainStarted = 0;
const sockets = new Map();  // socket → {busy: requests in progress, lastActive: ms}

const server = http.createServer((req, res) => {
  const state = sockets.get(req.socket);
  state.busy++;
  res.on('close', () => {
    state.busy--;
    state.lastActive = Date.now();
  });
  const ok = req.method === 'GET' && req.url.split('?')[0] === '/';
  const status = req.method !== 'GET' ? 405 : ok ? 200 : 404;
  const body = ok ? `pid=${pid} gen=${gen}\n` : `${http.STATUS_CODES[status]}\n`;
  const headers = { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) };
  if (draining) headers.Connection = 'close';  // Node then closes after the response
  res.writeHead(status, headers);
  res.end(body);
});

server.on('connection', (socket) => {
  sockets.set(socket, { busy: 0, lastActive: Date.now() });
  socket.on('close', () => sockets.delete(socket));
});

// Closes connections that have been idle for the grace period. Closing every
// idle connection at once (closeIdleConnections) would hit clients that
// have just sent their next request, and they would see a reset. A client
// that keeps its end open after our FIN is cut off after LINGER_MS more.
function sweepIdle() {
  const now = Date.now();
  for (const [socket, state] of sockets) {
    const idle = now - Math.max(drainStarted, state.lastActive);
    if (state.busy > 0 || idle < IDLE_GRACE_MS) continue;
    if (!socket.writableEnded) socket.end();
    else if (idle >= IDLE_GRACE_MS + LINGER_MS) socket.destroy();
  }
}

function drain(signal) {
  if (draining) return log(`drain continues signal=${signal} connections=${sockets.size}`);
  draining = true;
  drainStarted = Date.now();
  log(`drain start signal=${signal} connections=${sockets.size}`);
  // net.Server's close, not http.Server's: since Node 19 the latter also
  // calls closeIdleConnections(), the race sweepIdle() avoids. The callback
  // runs once the last connection has closed.
  net.Server.prototype.close.call(server, () => {
    log(`drained drain_ms=${Date.now() - drainStarted}`);
    process.exit(0);
  });
  setInterval(sweepIdle, 25).unref();
  setTimeout(() => {
    log(`drain not finished after ${SAFETY_EXIT_MS} ms, exiting connections=${sockets.size}`);
    process.exit(1);
  }, SAFETY_EXIT_MS).unref();
}

process.on('SIGTERM', () => drain('SIGTERM'));
server.on('error', (err) => {
  log(`error="${err.message}"`);
  process.exit(1);
});
// Node calls listen(2) again with its default backlog (511), which also
// applies to the other generations: the backlog belongs to the socket.
server.listen({ fd: 3 }, () => log(`listening fd=3 addr=${JSON.stringify(server.address())}`));
