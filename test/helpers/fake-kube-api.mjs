// A stand-in Kubernetes API for tests: serves fixed objects by path over HTTPS with a bearer token, logs every request.
// Usage: node fake-kube-api.mjs OBJECTS.json CERT.pem KEY.pem TOKEN
// OBJECTS.json maps a request path to the object to answer (200), or to {"$status": N} for an error status; any
// other path is 404. Listens on 127.0.0.1 (of the netns it runs in), prints "listening PORT", then one line per
// request: "GET /path auth=ok|bad status=N".
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [objectsPath, certPath, keyPath, token] = process.argv.slice(2);
const objects = JSON.parse(readFileSync(objectsPath, 'utf8'));
const server = createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) }, (req, res) => {
  const path = new URL(req.url ?? '/', 'https://x').pathname;
  const authOk = req.headers['authorization'] === `Bearer ${token}`;
  let status = 200;
  let body;
  if (!authOk) {
    status = 401;
    body = { kind: 'Status', code: 401, message: 'Unauthorized' };
  } else if (!(path in objects)) {
    status = 404;
    body = { kind: 'Status', code: 404, message: `${path} not found` };
  } else if (typeof objects[path]?.$status === 'number') {
    status = objects[path].$status;
    body = { kind: 'Status', code: status, message: 'as configured' };
  } else {
    body = objects[path];
  }
  process.stdout.write(`${req.method} ${path} auth=${authOk ? 'ok' : 'bad'} status=${status}\n`);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
