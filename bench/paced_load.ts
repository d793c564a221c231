// Open-loop load at a constant rate, as wrk2 sends it: request i leaves at t0 + i / rate whether
// or not earlier ones were answered, and its latency counts from that scheduled time, so a server
// that falls behind cannot hide it (no coordinated omission). autocannon's rate limit sends each
// connection's quota for a second at once at the start of the second, in step across connections:
// bursts of the whole second's requests, which measure the burst and not the rate.
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface PacedResult {
  sent: number;
  /** 2xx answers */
  ok: number;
  /** other status codes, connection errors and timeouts */
  failed: number;
  /** latency percentiles of the 2xx answers, ms from the scheduled send time */
  p50: number;
  p99: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** POSTs body to http://127.0.0.1:port + path at `rate` requests per second for `seconds`. */
export async function pacedLoad(port: number, path: string, body: Buffer, rate: number, seconds: number, timeoutMs = 30_000): Promise<PacedResult> {
  if (!(rate > 0) || !(seconds > 0)) throw new Error(`pacedLoad: rate and seconds must be positive, got ${rate} and ${seconds}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const total = Math.max(1, Math.round(rate * seconds));
  const latencies: number[] = [];
  let failed = 0;
  const one = (scheduled: number): Promise<void> => new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, timeout: timeoutMs, headers: { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) latencies.push(performance.now() - scheduled);
        else failed++;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => { failed++; resolve(); });
    req.end(body);
  });
  const inFlight: Promise<void>[] = [];
  const t0 = performance.now() + 5;
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(one(due));
  }
  await Promise.all(inFlight);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { sent: total, ok: latencies.length, failed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}
