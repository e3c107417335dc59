// A real OpenTelemetry SDK meter provider with a reader that the test
// collects from on demand, and helpers to read what was recorded.
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from "@opentelemetry/sdk-metrics";

class TestReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A data point: its attributes and value (a sum, a gauge, or a histogram's count). */
export interface Point {
  readonly attributes: Record<string, unknown>;
  readonly value: number;
  /** A histogram's sum; undefined for sums and gauges. */
  readonly sum?: number;
}

/** What one test records to. */
export interface TestMetrics {
  readonly provider: MeterProvider;
  /** Collects now and returns the data points of `name` (none when nothing was recorded). */
  points(name: string): Promise<Point[]>;
  /** Collects now and returns every metric's name and unit. */
  metrics(): Promise<{ name: string; unit: string; description: string }[]>;
  shutdown(): Promise<void>;
}

/**
 * createTestMetrics returns a meter provider with a reader of cumulative
 * temporality, or delta: then gauges whose callbacks were removed report
 * nothing, and sums count since the last collection.
 */
export function createTestMetrics(temporality?: "delta"): TestMetrics {
  const reader = new TestReader(
    temporality === "delta" ? { aggregationTemporalitySelector: () => AggregationTemporality.DELTA } : undefined,
  );
  const provider = new MeterProvider({ readers: [reader] });
  async function collect(): Promise<MetricData[]> {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) throw new AggregateError(errors, "metric collection failed");
    return resourceMetrics.scopeMetrics.filter((s) => s.scope.name === "certgate").flatMap((s) => s.metrics);
  }
  return {
    provider,
    async points(name) {
      const metric = (await collect()).find((m) => m.descriptor.name === name);
      if (metric === undefined) return [];
      return (metric.dataPoints as DataPoint<number | Histogram>[]).map((p) =>
        typeof p.value === "number"
          ? { attributes: { ...p.attributes }, value: p.value }
          : { attributes: { ...p.attributes }, value: p.value.count, sum: p.value.sum },
      );
    },
    async metrics() {
      return (await collect()).map((m) => ({
        name: m.descriptor.name,
        unit: m.descriptor.unit,
        description: m.descriptor.description,
      }));
    },
    shutdown: () => provider.shutdown(),
  };
}

/** The value of the point whose attributes include `match`, or 0 when there is none. */
export function pointValue(points: Point[], match: Record<string, unknown>): number {
  const found = points.filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v));
  if (found.length > 1) throw new Error(`${found.length} points match ${JSON.stringify(match)}`);
  return found[0]?.value ?? 0;
}
