// The benches' upstream application, run as its own process (forked, IPC): a plain node:http
// server that knows nothing of the mesh.
//   POST /rr/<n>    reads the request body, answers 200 with n bytes (request/response load)
//   GET  /bulk/<n>  streams n bytes (single-stream throughput), honouring backpressure
// Parent → child: {type:'listen', addresses:[{host,port}]} → {type:'listening'}; {type:'cpu'} →
// {type:'cpu', seconds}. The process exits when the parent disconnects.
import http from 'node:http';

const CHUNK = Buffer.alloc(64 * 1024, 0x62);
const bodies = new Map();
const bodyOf = (n) => {
  let b = bodies.get(n);
  if (!b) bodies.set(n, (b = Buffer.alloc(n, 0x62)));
  return b;
};

function handle(req, res) {
  const [, kind, size] = (req.url ?? '').split('/');
  const n = Number(size);
  if (!Number.isInteger(n) || n < 0) {
    res.writeHead(404).end();
    return;
  }
  if (kind === 'rr') {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      res.end(bodyOf(n));
    });
    return;
  }
  if (kind === 'bulk') {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    let left = n;
    const pump = () => {
      while (left > 0) {
        const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
        left -= piece.length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  res.writeHead(404).end();
}

const servers = [];
process.on('message', async (msg) => {
  try {
    if (msg.type === 'listen') {
      for (const a of msg.addresses) {
        const server = http.createServer(handle);
        // Keep-alive connections stay open for the whole run (the load is one long connection each).
        server.keepAliveTimeout = 0;
        server.requestTimeout = 0;
        server.on('connection', (s) => s.setNoDelay(true));
        await new Promise((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: a.host, port: a.port }, resolve);
        });
        servers.push(server);
      }
      process.send({ type: 'listening' });
    } else if (msg.type === 'cpu') {
      const u = process.cpuUsage();
      process.send({ type: 'cpu', seconds: (u.user + u.system) / 1e6 });
    }
  } catch (err) {
    process.send({ type: 'error', message: String(err?.message ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
