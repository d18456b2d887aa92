/**
 * Starts the real server of this repository (`modelrouter serve`) as a child process, with a
 * configuration whose only provider is a {@link FakeOpenAI} on localhost, and auth and a
 * budget switched on so that every error detail type can be provoked.
 *
 * The executable is $MODELROUTER_BIN, else `.venv/bin/modelrouter` at the repository root
 * (what `make install` builds).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { ModelRouterClient } from "../src/index.js";
import { FakeOpenAI } from "./fake-upstream.js";

/** API key of tenant "acme" (no budget). */
export const ACME_KEY = "mr-test-acme-0123456789";
/** API key of tenant "broke", whose daily budget is too small for any model. */
export const BROKE_KEY = "mr-test-broke-9876543210";
/** What the server sends upstream as the OpenAI key (read from this variable). */
export const UPSTREAM_KEY = "sk-node-test-upstream";

export interface RunningServer {
  target: string;
  upstream: FakeOpenAI;
  /** A client authenticated as tenant "acme"; closed by stop(). */
  client: ModelRouterClient;
  /** Everything the server wrote to stderr so far (its log). */
  log: () => string;
  stop: () => Promise<void>;
}

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "protos", "modelrouter", "v1", "router.proto"))) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error("cannot find the repository root (protos/modelrouter/v1/router.proto)");
    }
    dir = parent;
  }
  return dir;
}

function serverBinary(): string {
  const bin = process.env.MODELROUTER_BIN ?? join(repoRoot(), ".venv", "bin", "modelrouter");
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: run \`make install\` or set MODELROUTER_BIN`);
  }
  return resolve(bin);
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((ok) => probe.listen(0, "127.0.0.1", ok));
  const address = probe.address();
  await new Promise<void>((ok) => probe.close(() => ok()));
  if (address === null || typeof address === "string") {
    throw new Error("no TCP port");
  }
  return address.port;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * Two models on the fake upstream (a cheap one and a strong one) and a costly one whose
 * provider has no API key: ListModels reports it unavailable and Execute never calls it, but
 * Route still offers it (last, as the dearest) for callers that hold their own keys.
 */
function config(upstreamUrl: string): string {
  return `
[server]
host = "127.0.0.1"
grace_period_s = 1

# Only the gRPC face is tested here; 0 turns the HTTP server off (it would bind 8080).
[http]
port = 0

[routing]
default_classifier = "rules"
default_max_output_tokens = 64

[execution]
max_attempts_per_model = 1
backoff_base_s = 0.01
backoff_max_s = 5.0
request_timeout_s = 20.0

[storage]
hot = "memory"
log = "memory"

[auth]
enabled = true
[[auth.keys]]
tenant = "acme"
sha256 = "${sha256(ACME_KEY)}"
[[auth.keys]]
tenant = "broke"
sha256 = "${sha256(BROKE_KEY)}"

[budgets.tenants.broke]
day_usd = 0.000000001

[providers.fake]
type = "openai"
api_key_env = "MODELROUTER_NODE_TEST_UPSTREAM_KEY"
base_url = "${upstreamUrl}"

[providers.keyless]
type = "openai"
api_key_env = "MODELROUTER_NODE_TEST_UNSET_KEY"

[[models]]
name = "fake-mini"
provider = "fake"
upstream_model = "fake-mini-2025"
input_price_usd_per_mtok = 0.10
output_price_usd_per_mtok = 0.40
context_window_tokens = 128000
typical_latency_ms = 300
quality = 0.6
max_complexity = "moderate"
capabilities = ["chat", "code", "tools"]

[[models]]
name = "fake-large"
provider = "fake"
upstream_model = "fake-large-2025"
input_price_usd_per_mtok = 2.00
output_price_usd_per_mtok = 8.00
context_window_tokens = 1000000
typical_latency_ms = 900
quality = 0.9
max_complexity = "expert"
capabilities = ["chat", "code", "long_context", "tools"]
quality_by_task = { code = 0.95 }

[[models]]
name = "keyless-model"
provider = "keyless"
upstream_model = "keyless"
input_price_usd_per_mtok = 50.0
output_price_usd_per_mtok = 100.0
context_window_tokens = 8192
typical_latency_ms = 100
quality = 0.99
max_complexity = "expert"
capabilities = ["chat", "code", "vision"]
`;
}

export async function startServer(): Promise<RunningServer> {
  const upstream = new FakeOpenAI();
  await upstream.start();
  const dir = await mkdtemp(join(tmpdir(), "modelrouter-node-"));
  const configPath = join(dir, "modelrouter.toml");
  await writeFile(configPath, config(upstream.baseUrl));
  const port = await freePort();
  // No OTEL_* exporter setting of the caller's shell may send telemetry off the machine.
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("OTEL_")),
  );
  env.MODELROUTER_NODE_TEST_UPSTREAM_KEY = UPSTREAM_KEY;
  delete env.MODELROUTER_NODE_TEST_UNSET_KEY;
  delete env.MODELROUTER_CONFIG;
  const child = spawn(
    serverBinary(),
    ["serve", "--config", configPath, "--port", String(port), "--host", "127.0.0.1"],
    { env, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const target = `127.0.0.1:${port}`;
  const client = new ModelRouterClient(target, { apiKey: ACME_KEY, timeoutMs: 10_000 });
  const stop = async () => {
    client.close();
    await terminate(child);
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilServing(client, child, () => stderr);
  } catch (error) {
    await stop();
    throw error;
  }
  return { target, upstream, client, log: () => stderr, stop };
}

async function waitUntilServing(
  client: ModelRouterClient,
  child: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`modelrouter serve exited with ${child.exitCode}:\n${log()}`);
    }
    try {
      await client.listModels({ timeoutMs: 1_000 });
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`modelrouter serve did not answer within 60 s (${String(error)}):\n${log()}`);
      }
      await sleep(100);
    }
  }
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(killer);
}
