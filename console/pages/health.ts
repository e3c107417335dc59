import { HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { errorText, health } from "../api.js";
import { h, replace } from "../dom.js";
import type { CertificateModel } from "../model.js";

const names: Record<number, string> = {
  [HealthCheckResponse_ServingStatus.UNKNOWN]: "unknown",
  [HealthCheckResponse_ServingStatus.SERVING]: "serving",
  [HealthCheckResponse_ServingStatus.NOT_SERVING]: "not serving",
  [HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN]: "service unknown",
};

/**
 * healthPage shows the store's health as `grpc.health.v1.Health` reports
 * it: on PostgreSQL a replica is "not serving" while it cannot reach the
 * database, so this also says whether the database is reachable.
 */
export function healthPage(main: HTMLElement, model: CertificateModel): () => void {
  const list = h("dl", { class: "fields" }, h("dt", {}, "Store"), h("dd", {}, "checking…"));
  const check = h("button", { type: "button", onclick: () => void run() }, "Check again");
  replace(main, h("h1", { tabindex: "-1" }, "Health"), list, h("p", {}, check));
  let alive = true;
  const run = async () => {
    const rows: Node[] = [];
    for (const [label, service] of [
      ["Server", ""],
      ["Certificate store (and its database)", "certgate.v1.CertificateStoreService"],
    ] as const) {
      let text: string;
      let ok = false;
      try {
        const res = await health.check({ service });
        text = names[res.status] ?? String(res.status);
        ok = res.status === HealthCheckResponse_ServingStatus.SERVING;
      } catch (error) {
        text = `unreachable: ${errorText(error)}`;
      }
      rows.push(h("dt", {}, label), h("dd", { class: ok ? "ok" : "error" }, text));
    }
    rows.push(
      h("dt", {}, "Certificates"),
      h("dd", {}, model.loaded ? String(model.byId.size) : "loading…"),
      h("dt", {}, "Live updates"),
      h("dd", { class: model.error === undefined ? "ok" : "error" }, model.error ?? "connected"),
      h("dt", {}, "Checked"),
      h("dd", {}, `${new Date().toISOString().slice(0, 19).replace("T", " ")} UTC`),
    );
    if (alive) replace(list, rows);
  };
  void run();
  return () => {
    alive = false;
  };
}
