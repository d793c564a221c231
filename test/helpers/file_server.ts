// A loopback HTTP server for download tests: files from a folder (GET /<name>), and routes that
// misbehave on purpose. Runs in the test's process (startFileServer), or as a child process
// (`node file_server.js <dir>`, printing its URL on stdout) for code that downloads synchronously
// and so would block a server in its own process.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';

export interface FileServer {
  url: string;
  /** requests seen, by path */
  hits: string[];
  close(): Promise<void>;
}

/**
 * Routes: /<file> serves dir/<file>; /redirect/<file> answers 302 to /<file>; /loop redirects to
 * itself; /truncated/<file> declares the file's length and sends half before closing; /stall/<file>
 * sends 10 bytes and then nothing; /missing answers 404 (as does any absent file).
 */
export function startFileServer(dir: string): Promise<FileServer> {
  const hits: string[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hits.push(p);
    const [, route, ...rest] = p.split('/');
    const file = (name: string): Buffer | null => {
      const f = path.join(dir, path.basename(name));
      return name && fs.existsSync(f) ? fs.readFileSync(f) : null;
    };
    const notFound = (): void => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    };
    if (route === 'redirect') {
      res.writeHead(302, { location: `/${rest.join('/')}` });
      res.end();
      return;
    }
    if (route === 'loop') {
      res.writeHead(301, { location: '/loop' });
      res.end();
      return;
    }
    if (route === 'truncated' || route === 'stall') {
      const body = file(rest.join('/'));
      if (!body) return notFound();
      res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' });
      if (route === 'truncated') {
        res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      } else {
        res.write(body.subarray(0, 10));
      }
      return;
    }
    const body = file(p.slice(1));
    if (!body) return notFound();
    res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        hits,
        close: () => new Promise<void>((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => done());
        }),
      });
    });
  });
}

export interface ChildFileServer {
  url: string;
  close(): void;
}

/** The same server in a child process: for synchronous downloads (createModel's). */
export async function startChildFileServer(dir: string): Promise<ChildFileServer> {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n');
      if (line.length > 1) resolve(line[0].trim());
    });
    child.on('exit', (code) => reject(new Error(`file server exited with ${code}`)));
  });
  return { url, close: () => { child.kill(); } };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const s = await startFileServer(process.argv[2] ?? '.');
  process.stdout.write(`${s.url}\n`);
  // ends with the parent: a test that forgot to close it must not leave a server behind
  setInterval(() => { if (process.ppid === 1) process.exit(0); }, 1000).unref();
}
