// downloadFile against a loopback HTTP server (these machines have no internet): the right file,
// a wrong hash, a truncated body, a 404, a stalled server hitting the timeout, redirects, a refused
// connection; and the guarantee behind all of them: the target is never a partial or corrupt
// file, and no temp file is left.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { spawnSync } from 'node:child_process';
import { DownloadError, downloadFile, downloadFileSync, sha256File } from '../../src/io/download.js';
import { startChildFileServer, startFileServer, type ChildFileServer, type FileServer } from '../helpers/file_server.js';

const dir = fs.mkdtempSync(join(tmpdir(), 'convkit-dl-'));
const served = join(dir, 'served');
const cache = join(dir, 'cache');
// 300 KB: several chunks, so the progress and the streaming paths run
const body = randomBytes(300_000);
const sha = createHash('sha256').update(body).digest('hex');
let server: FileServer;

before(async () => {
  fs.mkdirSync(served);
  fs.writeFileSync(join(served, 'w.bin'), body);
  server = await startFileServer(served);
});
after(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The folder holds only `names` (no temp file left behind). */
function onlyFiles(folder: string, names: string[]): void {
  assert.deepEqual(fs.existsSync(folder) ? fs.readdirSync(folder).sort() : [], [...names].sort());
}

async function fails(p: Promise<unknown>, re: RegExp): Promise<DownloadError> {
  const e = await p.then(() => null, (err: unknown) => err);
  assert.ok(e instanceof DownloadError, `expected a DownloadError, got ${String(e)}`);
  assert.match(e.message, re);
  return e;
}

describe('downloadFile', () => {
  test('the right file: written whole, hash checked, returned', async () => {
    const out = join(cache, 'ok', 'w.bin');
    const r = await downloadFile(`${server.url}/w.bin`, out, { sha256Prefix: sha.slice(0, 8), progress: false });
    assert.equal(r.bytes, body.length);
    assert.equal(r.sha256, sha);
    assert.ok(fs.readFileSync(out).equals(body));
    onlyFiles(join(cache, 'ok'), ['w.bin']);
  });

  test("a killed download's temp file is removed, a live process's is left alone", async () => {
    const folder = join(cache, 'stale');
    fs.mkdirSync(folder, { recursive: true });
    const dead = spawnSync('true').pid!;
    const stale = `w.bin.tmp-${dead}-aaaaaaaaaaaa`;
    const live = `w.bin.tmp-${process.pid}-bbbbbbbbbbbb`;
    const other = `x.bin.tmp-${dead}-cccccccccccc`;
    for (const n of [stale, live, other]) fs.writeFileSync(join(folder, n), 'partial');
    await downloadFile(`${server.url}/w.bin`, join(folder, 'w.bin'), { sha256Prefix: sha.slice(0, 8), progress: false });
    onlyFiles(folder, ['w.bin', live, other]);
  });

  test('a redirect is followed (relative Location); a redirect loop stops with a clear error', async () => {
    const out = join(cache, 'redir', 'w.bin');
    await downloadFile(`${server.url}/redirect/w.bin`, out, { sha256Prefix: sha.slice(0, 12), progress: false });
    assert.ok(fs.readFileSync(out).equals(body));
    const loop = join(cache, 'loop', 'w.bin');
    await fails(downloadFile(`${server.url}/loop`, loop, { maxRedirects: 3, progress: false }), /too many redirects \(more than 3\)/);
    onlyFiles(join(cache, 'loop'), []);
  });

  test('a wrong hash: nothing kept, and an existing good file is left as it was', async () => {
    const folder = join(cache, 'bad');
    fs.mkdirSync(folder, { recursive: true });
    const out = join(folder, 'w.bin');
    const wrong = (sha[0] === '0' ? '1' : '0') + sha.slice(1, 8);
    const e = await fails(downloadFile(`${server.url}/w.bin`, out, { sha256Prefix: wrong, progress: false }), new RegExp(`SHA-256 mismatch: expected a hash starting with ${wrong}, got ${sha}`));
    assert.equal(e.url, `${server.url}/w.bin`);
    onlyFiles(folder, []);
    // a previous file survives a failed download untouched
    fs.writeFileSync(out, 'previous');
    await fails(downloadFile(`${server.url}/w.bin`, out, { sha256Prefix: wrong, progress: false }), /mismatch/);
    assert.equal(fs.readFileSync(out, 'utf8'), 'previous');
    onlyFiles(folder, ['w.bin']);
  });

  test('a truncated body (Content-Length larger than sent) is refused', async () => {
    const folder = join(cache, 'trunc');
    await fails(downloadFile(`${server.url}/truncated/w.bin`, join(folder, 'w.bin'), { progress: false }), new RegExp(`after \\d+ of ${body.length} bytes`));
    onlyFiles(folder, []);
  });

  test('a 404 names the status, the URL and where to put the file by hand', async () => {
    const out = join(cache, 'missing', 'w.bin');
    const e = await fails(downloadFile(`${server.url}/missing`, out, { sha256Prefix: 'abcdef12', progress: false }), /answered 404/);
    assert.match(e.message, new RegExp(`could not download ${server.url}/missing`));
    assert.match(e.message, new RegExp(`put it at ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(its SHA-256 starts with abcdef12\\)`));
    onlyFiles(join(cache, 'missing'), []);
  });

  test('a server that stops sending hits the timeout', async () => {
    const folder = join(cache, 'stall');
    const t0 = performance.now();
    await fails(downloadFile(`${server.url}/stall/w.bin`, join(folder, 'w.bin'), { timeoutMs: 300, progress: false }), /no data for 0.3 s after 10 bytes \(timeout\)/);
    const ms = performance.now() - t0;
    assert.ok(ms >= 250 && ms < 5000, `timed out after ${ms.toFixed(0)} ms`);
    onlyFiles(folder, []);
  });

  test('a body over maxBytes is refused from its Content-Length', async () => {
    await fails(downloadFile(`${server.url}/w.bin`, join(cache, 'big', 'w.bin'), { maxBytes: 1000, progress: false }), /declares 300000 bytes, more than the limit of 1000/);
    onlyFiles(join(cache, 'big'), []);
  });

  test('no network (a refused connection): the URL and the manual path in the error', async () => {
    // a port that was just free and is closed again
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const out = join(cache, 'offline', 'w.bin');
    const e = await fails(downloadFile(`http://127.0.0.1:${port}/w.bin`, out, { progress: false }), /ECONNREFUSED/);
    assert.match(e.message, /to install it by hand, download it elsewhere and put it at/);
  });

  test('bad arguments are refused before any request', async () => {
    await assert.rejects(downloadFile(`${server.url}/w.bin`, join(cache, 'x'), { sha256Prefix: 'XYZ' }), /sha256Prefix must be 1-64 lowercase hex/);
    await fails(downloadFile('ftp://127.0.0.1/w.bin', join(cache, 'x'), { progress: false }), /unsupported protocol 'ftp:'/);
  });

  test('the progress bar goes to stderr in lines when stderr is not a terminal', async () => {
    const chunks: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string | Uint8Array) => { chunks.push(String(s)); return true; }) as typeof process.stderr.write;
    try {
      await downloadFile(`${server.url}/w.bin`, join(cache, 'progress', 'w.bin'), { label: 'fixture' });
    } finally {
      process.stderr.write = write;
    }
    const text = chunks.join('');
    assert.match(text, /fixture: 0\.3 MB \/ 0\.3 MB 100%/);
  });
});

describe('downloadFileSync (a child process)', () => {
  let child: ChildFileServer;
  before(async () => { child = await startChildFileServer(served); });
  after(() => child.close());

  test('downloads, verifies, and reports failures as DownloadError', () => {
    const out = join(cache, 'sync', 'w.bin');
    const r = downloadFileSync(`${child.url}/redirect/w.bin`, out, { sha256Prefix: sha.slice(0, 8), progress: false });
    assert.equal(r.sha256, sha);
    assert.equal(sha256File(out), sha);
    assert.throws(() => downloadFileSync(`${child.url}/missing`, join(cache, 'sync', 'm.bin'), { progress: false }),
      (e: unknown) => e instanceof DownloadError && /answered 404/.test(e.message) && e.url === `${child.url}/missing`);
    onlyFiles(join(cache, 'sync'), ['w.bin']);
  });
});
