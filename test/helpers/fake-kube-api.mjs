// A stand-in Kubernetes API for tests: serves fixed objects by path over HTTPS (or plain HTTP) with a bearer token, logs every request.
// Usage: node fake-kube-api.mjs OBJECTS.json CERT.pem KEY.pem TOKEN      (HTTPS)
//        node fake-kube-api.mjs OBJECTS.json --http - TOKEN              (plain HTTP: the insecure server a test refuses)
// OBJECTS.json maps a request path to the object to answer (200), or to {"$status": N} for an error status; any
// other path is 404. Misbehaving servers for the limits tests: {"$trickle": true} answers 200 and then one byte every
// 200 ms, forever; {"$flood": N} answers 200, N bytes of spaces at once, then one byte every 500 ms, forever.
// Listens on 127.0.0.1 (of the netns it runs in), prints "listening PORT", then one line per request:
// "GET /path auth=ok|bad status=N" (the Authorization header it got is "auth=ok" only when it is the token).
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:https';

const [objectsPath, certPath, keyPath, token] = process.argv.slice(2);
const objects = JSON.parse(readFileSync(objectsPath, 'utf8'));
const timers = new Set();

function endless(res, intervalMs) {
  const timer = setInterval(() => res.write(' '), intervalMs);
  timers.add(timer);
  res.on('close', () => {
    clearInterval(timer);
    timers.delete(timer);
  });
}

const handler = (req, res) => {
  const path = new URL(req.url ?? '/', 'https://x').pathname;
  const authOk = req.headers['authorization'] === `Bearer ${token}`;
  let status = 200;
  let body;
  const object = objects[path];
  if (!authOk) {
    status = 401;
    body = { kind: 'Status', code: 401, message: 'Unauthorized' };
  } else if (!(path in objects)) {
    status = 404;
    body = { kind: 'Status', code: 404, message: `${path} not found` };
  } else if (typeof object?.$status === 'number') {
    status = object.$status;
    body = { kind: 'Status', code: status, message: 'as configured' };
  } else if (object?.$trickle === true || typeof object?.$flood === 'number') {
    process.stdout.write(`${req.method} ${path} auth=ok status=200 (${object.$trickle ? 'trickle' : 'flood'})\n`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{');
    if (typeof object.$flood === 'number') {
      const chunk = Buffer.alloc(64 << 10, 0x20);
      for (let sent = 0; sent < object.$flood; sent += chunk.length) res.write(chunk);
    }
    endless(res, object.$trickle ? 200 : 500);
    return;
  } else {
    body = object;
  }
  process.stdout.write(`${req.method} ${path} auth=${authOk ? 'ok' : 'bad'} status=${status}\n`);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const server = certPath === '--http' ? createHttpServer(handler) : createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) }, handler);
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => {
  for (const timer of timers) clearInterval(timer);
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
});
