// Real nginx and Caddy for the authz tests: started on loopback ports from a
// temporary folder, in the foreground, and stopped by the test.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import { repo } from "./cli-harness.js";
import { waitFor } from "./harness.js";
import { watchChild } from "./watched-child.js";

export const nginxBinary = "/usr/sbin/nginx";
export const caddyBinary = "/usr/bin/caddy";
/** Whether nginx and Caddy are installed (CI installs them; see .ci/run). */
export const haveProxies = existsSync(nginxBinary) && existsSync(caddyBinary);

/** A proxy process, stopped by `stop()`. */
export interface ProxyProcess {
  readonly port: number;
  output(): string;
  stop(): Promise<void>;
}

async function startProcess(
  name: string,
  command: string,
  args: string[],
  port: number,
  env: Record<string, string> = {},
): Promise<ProxyProcess> {
  const child: ChildProcess = spawn(command, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const watched = watchChild(child);
  await waitFor(async () => watched.exited() || (await canConnect(port)), `${name} to listen on ${port}`, 20_000);
  if (watched.exited()) throw new Error(`${name} did not start:\n${watched.output().all}`);
  return {
    port,
    output: () => watched.output().all,
    async stop() {
      if (!watched.exited()) child.kill("SIGTERM");
      await watched.exit;
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** The files a proxy configuration names, written under `dir`. */
export async function writeServerFiles(dir: string, server: IssuedCertificate): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "server.pem");
  const key = join(dir, "server-key.pem");
  await writeFile(cert, server.cert);
  await writeFile(key, server.key, { mode: 0o600 });
  return { cert, key };
}

/** The ports and files that replace those of an example configuration. */
export interface ExampleSubstitutions {
  readonly listen: number;
  readonly authz: number;
  readonly upstream: number;
  readonly grpcUpstream?: number;
  readonly cert: string;
  readonly key: string;
}

/**
 * startNginx runs examples/proxies/nginx.conf as it is, but for its ports
 * and files, inside a minimal main configuration with a temporary prefix.
 */
export async function startNginx(dir: string, s: ExampleSubstitutions): Promise<ProxyProcess> {
  const example = await readFile(join(repo, "examples", "proxies", "nginx.conf"), "utf8");
  const site = example
    .replace("listen 443 ssl http2;", `listen 127.0.0.1:${s.listen} ssl http2;`)
    .replaceAll("127.0.0.1:8446", `127.0.0.1:${s.authz}`)
    .replaceAll("127.0.0.1:8080", `127.0.0.1:${s.upstream}`)
    .replaceAll("127.0.0.1:50051", `127.0.0.1:${s.grpcUpstream ?? s.upstream}`)
    .replace("/etc/nginx/certs/server.pem", s.cert)
    .replace("/etc/nginx/certs/server-key.pem", s.key);
  await writeFile(join(dir, "site.conf"), site);
  const args = await writeNginxMain(dir, `include ${join(dir, "site.conf")};`, {
    errorLevel: "warn",
    workerConnections: 512,
  });
  return startProcess("nginx", nginxBinary, args, s.listen);
}

/** How the nginx main configuration of `writeNginxMain` logs and scales. */
export interface NginxMainOptions {
  readonly errorLevel: string;
  readonly workerConnections: number;
}

/**
 * writeNginxMain writes `dir`/nginx.conf: nginx in the foreground, one
 * process, its pid, log and temporary files under `dir`, no access log, and
 * `http` inside its http block. It returns nginx's arguments.
 */
export async function writeNginxMain(dir: string, http: string, options: NginxMainOptions): Promise<string[]> {
  await mkdir(join(dir, "logs"), { recursive: true });
  await writeFile(
    join(dir, "nginx.conf"),
    `daemon off;
master_process off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "logs", "error.log")} ${options.errorLevel};
events { worker_connections ${options.workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  ${http}
}
`,
  );
  return ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "logs", "error.log")];
}

/**
 * startCaddy runs examples/proxies/Caddyfile as it is, but for its ports,
 * files and site name, with its state in a temporary folder.
 */
export async function startCaddy(dir: string, s: ExampleSubstitutions): Promise<ProxyProcess> {
  const example = await readFile(join(repo, "examples", "proxies", "Caddyfile"), "utf8");
  const site = example
    .replace("api.example.com:443 {", `https://localhost:${s.listen} {\n\tbind 127.0.0.1`)
    .replaceAll("127.0.0.1:8446", `127.0.0.1:${s.authz}`)
    .replaceAll("127.0.0.1:8080", `127.0.0.1:${s.upstream}`)
    .replace("/etc/caddy/certs/server.pem", s.cert)
    .replace("/etc/caddy/certs/server-key.pem", s.key);
  const file = join(dir, "Caddyfile");
  await writeFile(
    file,
    `{\n\tadmin off\n\tauto_https disable_redirects\n\tservers {\n\t\tprotocols h1 h2\n\t}\n}\n\n${site}`,
  );
  return startProcess("caddy", caddyBinary, ["run", "--config", file, "--adapter", "caddyfile"], s.listen, {
    HOME: dir,
    XDG_DATA_HOME: join(dir, "data"),
    XDG_CONFIG_HOME: join(dir, "config"),
  });
}

/** An upstream that answers with the request's Certgate-* headers, as JSON. */
export interface Upstream {
  readonly port: number;
  /** How many requests reached it. */
  readonly requests: () => number;
  close(): Promise<void>;
}

/** The HTTP/1.1 upstream: answers `{ headers }` with the Certgate-* and forwarding headers it got. */
export async function startHttpUpstream(): Promise<Upstream> {
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    const seen = Object.fromEntries(
      Object.entries(req.headers).filter(([name]) => name.startsWith("certgate-") || name.startsWith("x-client-cert")),
    );
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ headers: seen }));
  });
  return listening(
    server,
    () => count,
    () => server.closeAllConnections(),
  );
}

/** The gRPC upstream (h2c): Echo answers with the Certgate-Subject header it got, or "-". */
export async function startGrpcUpstream(): Promise<Upstream> {
  let count = 0;
  const routes = (router: ConnectRouter) =>
    router.service(EchoService, {
      echo(_req: unknown, context: HandlerContext) {
        count++;
        return { text: context.requestHeader.get("certgate-subject") ?? "-" };
      },
    } as never);
  const server = http2.createServer(connectNodeAdapter({ routes }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  return listening(
    server,
    () => count,
    () => {
      for (const s of sessions) s.destroy();
    },
  );
}

// An upstream once `server` listens on a loopback port; `close` drops its
// open connections first, so that it does not wait for the proxy's.
async function listening(server: net.Server, requests: () => number, dropConnections: () => void): Promise<Upstream> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        dropConnections();
        server.close(() => resolve());
      }),
  };
}

/** A response as the tests look at it. */
export interface ProxyResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** GET over HTTP/1.1 with TLS, presenting `client` (or no certificate), with extra headers. */
export function getHttp1(
  port: number,
  path: string,
  ca: string,
  client: IssuedCertificate | undefined,
  headers: Record<string, string> = {},
  agent?: https.Agent,
): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "GET",
        ca,
        servername: "localhost",
        // Caddy checks that the Host matches the TLS server name.
        headers: { host: `localhost:${port}`, ...headers },
        agent: agent ?? false,
        ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** GET over HTTP/2 with TLS, on a session of its own. */
export function getHttp2(
  port: number,
  path: string,
  ca: string,
  client: IssuedCertificate | undefined,
): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ca,
      servername: "localhost",
      ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
    });
    session.on("error", reject);
    const stream = session.request({ ":path": path, ":method": "GET", ":authority": `localhost:${port}` });
    let body = "";
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h as Record<string, string | string[] | undefined>;
    });
    stream.on("data", (d: string) => (body += d));
    stream.on("end", () => {
      session.close();
      resolve({ status, headers, body });
    });
    stream.on("error", (e) => {
      session.destroy();
      reject(e);
    });
    stream.end();
  });
}
