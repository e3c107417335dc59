import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponseSchema,
} from "../gen/grpc/health/v1/health_pb.js";
import { CertificateStoreService } from "../gen/certgate/v1/certificate_store_pb.js";
import { positiveInteger } from "../core/options.js";
import { createWatchLimits } from "./watch-limits.js";

/**
 * HealthStatus is the serving status the health service reports.
 */
export type HealthStatus = "SERVING" | "NOT_SERVING";

/**
 * HealthServiceOptions configures `createHealthService`.
 */
export interface HealthServiceOptions {
  /**
   * The services to report and their initial status; `""` stands for the
   * server as a whole. By default, `""` and
   * `certgate.v1.CertificateStoreService`, both `SERVING`.
   */
  services?: Readonly<Record<string, HealthStatus>>;
  /**
   * At most this many open Watch calls per connection; more are refused with
   * `Code.ResourceExhausted`. The service is open to clients without a
   * certificate, so both limits matter. By default, 16.
   */
  maxWatchesPerConnection?: number;
  /** At most this many open Watch calls in all. By default, 1024. */
  maxWatches?: number;
}

/**
 * HealthServiceHandler is a running `grpc.health.v1.Health` service.
 */
export interface HealthServiceHandler {
  /** Registers `grpc.health.v1.Health` on a Connect router. */
  routes(router: ConnectRouter): void;
  /** Sets the status of a service (adding it if unknown); Watch calls hear of it. */
  setStatus(service: string, status: HealthStatus): void;
  /** Reports every service `NOT_SERVING` and ends every Watch call. */
  close(): void;
}

/**
 * createHealthService serves the standard gRPC health service, so that load
 * balancers, Kubernetes gRPC probes and `grpc_health_probe` work.
 *
 * It is deliberately open: it needs no client certificate, since health
 * probes rarely have one, and it tells nothing but whether the server is
 * serving. Requests are limited to 1 KiB.
 */
export function createHealthService(options: HealthServiceOptions = {}): HealthServiceHandler {
  const statuses = new Map<string, ServingStatus>();
  const initial: Readonly<Record<string, HealthStatus>> = options.services ?? {
    "": "SERVING",
    [CertificateStoreService.typeName]: "SERVING",
  };
  for (const [service, status] of Object.entries(initial)) {
    statuses.set(service, toEnum(status));
  }
  const listeners = new Set<() => void>();
  const limits = createWatchLimits(
    "health watches",
    positiveInteger("health service: maxWatchesPerConnection", options.maxWatchesPerConnection, 16),
    positiveInteger("health service: maxWatches", options.maxWatches, 1024),
  );

  function status(service: string): ServingStatus | undefined {
    return statuses.get(service);
  }

  function changed(): void {
    for (const listener of [...listeners]) {
      listener();
    }
  }

  function nextChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        listeners.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      listeners.add(done);
      signal.addEventListener("abort", done);
    });
  }

  return {
    routes(router) {
      router.service(
        Health,
        {
          check(req) {
            const current = status(req.service);
            if (current === undefined) {
              throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
            }
            return { status: current };
          },
          list() {
            return { statuses: Object.fromEntries([...statuses].map(([name, s]) => [name, { status: s }])) };
          },
          async *watch(req, ctx): AsyncGenerator<MessageInitShape<typeof HealthCheckResponseSchema>> {
            const watch = limits.start(ctx);
            try {
              let last: ServingStatus | undefined;
              while (!watch.signal.aborted) {
                const current = status(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
                const wait = nextChange(watch.signal);
                if (current !== last) {
                  last = current;
                  yield { status: current };
                }
                await wait;
              }
            } finally {
              watch.forget();
            }
          },
        },
        { readMaxBytes: 1024 },
      );
    },
    setStatus(service, s) {
      statuses.set(service, toEnum(s));
      changed();
    },
    close() {
      for (const service of statuses.keys()) {
        statuses.set(service, ServingStatus.NOT_SERVING);
      }
      changed();
      limits.abortAll();
    },
  };
}

function toEnum(status: HealthStatus): ServingStatus {
  if (status === "SERVING") {
    return ServingStatus.SERVING;
  }
  if (status === "NOT_SERVING") {
    return ServingStatus.NOT_SERVING;
  }
  throw new TypeError(`health status must be SERVING or NOT_SERVING, got ${String(status)}`);
}
