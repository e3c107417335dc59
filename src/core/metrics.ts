// Where certgate's metrics go: OpenTelemetry, through `@opentelemetry/api`,
// an optional peer dependency. It is loaded once, synchronously, when the
// first factory asks for a meter (never by a static import, so that a
// process without it loads certgate fine). Without the package, or with
// no meter provider registered, there is no meter: callers then skip all
// recording, and the only cost was this check.
import { createRequire } from "node:module";

/**
 * MetricsAttributes are the attributes of one measurement.
 */
export type MetricsAttributes = Readonly<Record<string, string | number | boolean>>;

/**
 * MetricsObservableResult is what an observable instrument's callback reports to.
 */
export interface MetricsObservableResult {
  observe(value: number, attributes?: MetricsAttributes): void;
}

/**
 * MetricsMeter is the part of an OpenTelemetry `Meter` that certgate uses.
 */
export interface MetricsMeter {
  createHistogram(
    name: string,
    options?: { description?: string; unit?: string; advice?: { explicitBucketBoundaries?: number[] } },
  ): { record(value: number, attributes?: MetricsAttributes): void };
  createObservableCounter(
    name: string,
    options?: { description?: string; unit?: string },
  ): { addCallback(callback: (result: MetricsObservableResult) => void): void };
  createObservableGauge(
    name: string,
    options?: { description?: string; unit?: string },
  ): {
    addCallback(callback: (result: MetricsObservableResult) => void): void;
    removeCallback(callback: (result: MetricsObservableResult) => void): void;
  };
}

/**
 * MetricsMeterProvider is an OpenTelemetry `MeterProvider` (from
 * `@opentelemetry/api`, such as the SDK's `MeterProvider`), typed by the part
 * that certgate uses so that certgate's types need no `@opentelemetry/api`.
 */
export interface MetricsMeterProvider {
  getMeter(name: string, version?: string, options?: object): MetricsMeter;
}

/**
 * MetricsOptions is the `meterProvider` option of certgate's factories.
 */
export interface MetricsOptions {
  /**
   * The OpenTelemetry meter provider to record to. By default, the global
   * one (`metrics.getMeter("certgate")` of `@opentelemetry/api`), as it
   * stands when the factory is called: register the SDK first. Without
   * `@opentelemetry/api` installed, or without a registered provider,
   * nothing is recorded and nothing costs.
   */
  meterProvider?: MetricsMeterProvider;
}

interface OtelApi {
  readonly metrics: { getMeter(name: string): MetricsMeter };
  createNoopMeter(): MetricsMeter;
}

// undefined: not looked for yet; null: not installed.
let api: OtelApi | null | undefined;

function loadApi(): OtelApi | null {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)("@opentelemetry/api") as OtelApi;
    } catch {
      api = null;
    }
  }
  return api;
}

/**
 * meterName is the name certgate's instruments are created under.
 */
export const meterName = "certgate";

/**
 * meterOf returns the meter to record to: `provider`'s, or the global
 * provider's. Undefined when there is nothing to record to: no
 * `@opentelemetry/api`, or a no-op provider (none registered). Throws a
 * `TypeError` naming `option` when `provider` is not a meter provider.
 */
export function meterOf(
  provider: MetricsMeterProvider | undefined,
  option = "options.meterProvider",
): MetricsMeter | undefined {
  if (
    provider !== undefined &&
    (typeof provider !== "object" || provider === null || typeof provider.getMeter !== "function")
  ) {
    throw new TypeError(`certgate: ${option} must be an OpenTelemetry MeterProvider (with getMeter)`);
  }
  const otel = loadApi();
  const meter = provider === undefined ? otel?.metrics.getMeter(meterName) : provider.getMeter(meterName);
  if (meter === undefined || otel === null || otel === undefined) {
    return meter;
  }
  // The API's no-op meter records nothing: skip the recording altogether.
  return Object.getPrototypeOf(meter) === Object.getPrototypeOf(otel.createNoopMeter()) ? undefined : meter;
}

/**
 * MetricsGauge is an observable gauge callback that can be taken back.
 */
export interface MetricsRegistration {
  /** Removes the callback; nothing is observed for it afterwards. */
  remove(): void;
}

const gauges = new WeakMap<MetricsMeter, Map<string, ReturnType<MetricsMeter["createObservableGauge"]>>>();

/**
 * observeGauge adds `callback` to the observable gauge `name` of `meter`
 * (created once per meter), until the registration is removed. A callback
 * that throws reports nothing for that collection.
 */
export function observeGauge(
  meter: MetricsMeter,
  name: string,
  options: { description: string; unit: string },
  callback: (result: MetricsObservableResult) => void,
): MetricsRegistration {
  let byName = gauges.get(meter);
  if (byName === undefined) {
    byName = new Map();
    gauges.set(meter, byName);
  }
  let gauge = byName.get(name);
  if (gauge === undefined) {
    gauge = meter.createObservableGauge(name, options);
    byName.set(name, gauge);
  }
  const guarded = (result: MetricsObservableResult) => {
    try {
      callback(result);
    } catch {
      // A broken store must not break the collection of every other metric.
    }
  };
  gauge.addCallback(guarded);
  const instrument = gauge;
  return { remove: () => instrument.removeCallback(guarded) };
}

/**
 * StoreMetricsOptions are the metrics options of certgate's stores.
 */
export interface StoreMetricsOptions extends MetricsOptions {
  /**
   * The `certgate.store.name` attribute of the store's metrics, telling
   * apart several stores of one process. By default, the store's kind
   * (`memory`, `folder`, `remote`, `postgres`).
   */
  metricsName?: string;
}

/**
 * StoreMetrics is where a store records: its meter and the attributes that
 * name it.
 */
export interface StoreMetrics {
  readonly meter: MetricsMeter;
  readonly attributes: MetricsAttributes;
}

/**
 * storeMetricsOf checks a store's metrics options (throwing a `TypeError`
 * naming a malformed one) and returns where it records, or undefined when
 * there is no meter.
 */
export function storeMetricsOf(options: StoreMetricsOptions | undefined, kind: string): StoreMetrics | undefined {
  const name = options?.metricsName;
  if (name !== undefined && (typeof name !== "string" || name === "")) {
    throw new TypeError("certgate: options.metricsName must be a non-empty string");
  }
  const meter = meterOf(options?.meterProvider);
  if (meter === undefined) {
    return undefined;
  }
  return { meter, attributes: Object.freeze({ "certgate.store.kind": kind, "certgate.store.name": name ?? kind }) };
}

/**
 * observeStoreSize reports `size()` as the store's `certgate.store.certificates`
 * gauge; returns the registration to remove on `close()`, or undefined
 * without metrics.
 */
export function observeStoreSize(
  metrics: StoreMetrics | undefined,
  size: () => number,
): MetricsRegistration | undefined {
  if (metrics === undefined) {
    return undefined;
  }
  const { attributes } = metrics;
  return observeGauge(
    metrics.meter,
    "certgate.store.certificates",
    { description: "Certificates held by a certificate store (or its local copy).", unit: "{certificate}" },
    (result) => result.observe(size(), attributes),
  );
}
