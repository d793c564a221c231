// The child process of downloadFileSync: reads {url, file, options} as JSON on stdin, downloads,
// and prints one JSON line with the result or the failure's reason.
import * as fs from 'node:fs';
import { DownloadError, downloadFile, type DownloadOptions } from './download.js';

interface Job { url: string; file: string; options: DownloadOptions }

async function main(): Promise<void> {
  const job = JSON.parse(fs.readFileSync(0, 'utf8')) as Job;
  try {
    const result = await downloadFile(job.url, job.file, job.options);
    process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`);
  } catch (e) {
    const reason = e instanceof DownloadError ? e.reason : (e as Error).message ?? String(e);
    process.stdout.write(`${JSON.stringify({ ok: false, reason, message: (e as Error).message })}\n`);
    process.exitCode = 1;
  }
}

await main();
