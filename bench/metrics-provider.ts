// The OpenTelemetry SDK as an application would run it for the benchmark: a
// MeterProvider whose reader collects every second into an in-memory
// exporter that keeps only the last export, so that collection is part of
// the measured cost but memory stays flat.
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";

/**
 * createBenchMeterProvider returns a MeterProvider exporting every
 * `intervalMs` to an in-memory exporter that is emptied before each export.
 */
export function createBenchMeterProvider(intervalMs = 1000): MeterProvider {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const exportMetrics = exporter.export.bind(exporter);
  exporter.export = (metrics, done) => {
    exporter.reset();
    exportMetrics(metrics, done);
  };
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: intervalMs });
  return new MeterProvider({ readers: [reader] });
}
