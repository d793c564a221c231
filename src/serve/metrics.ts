// The server's Prometheus metrics, on a registry of its own (not prom-client's global one), so
// that several servers in one process (tests) each count only their own requests.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServeMetrics {
  readonly registry: Registry;
  /** every answered request, by model ('' outside a model's routes), endpoint and status code */
  readonly requests: Counter<'model' | 'endpoint' | 'code'>;
  /** answers with status 400 and above, by model and code */
  readonly errors: Counter<'model' | 'code'>;
  readonly queueDepth: Gauge<'model'>;
  readonly batchSize: Histogram<'model'>;
  /** seconds from a request's arrival to its answer, inference requests only */
  readonly latency: Histogram<'model' | 'endpoint'>;
}

export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export function createMetrics(o: { processMetrics?: boolean } = {}): ServeMetrics {
  const registry = new Registry();
  if (o.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'convkit_' });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: 'convkit_requests_total', help: 'HTTP requests answered', labelNames: ['model', 'endpoint', 'code'], registers }),
    errors: new Counter({ name: 'convkit_errors_total', help: 'HTTP requests answered with a 4xx or 5xx status', labelNames: ['model', 'code'], registers }),
    queueDepth: new Gauge({ name: 'convkit_queue_depth', help: 'requests waiting for a batch', labelNames: ['model'], registers }),
    batchSize: new Histogram({ name: 'convkit_batch_size', help: 'samples per batch run', labelNames: ['model'], buckets: BATCH_BUCKETS, registers }),
    latency: new Histogram({
      name: 'convkit_request_duration_seconds', help: 'time from a request to its answer (inference endpoints)', labelNames: ['model', 'endpoint'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    }),
  };
}
