#!/usr/bin/env node
// Load test for `gemma4 serve`: N concurrent clients streaming chat completions. Reports
// aggregate tokens/s, time to first token and latency percentiles; with --duration it is a soak
// test (clients loop until the time is up) that also watches the server's memory.
//
//   node scripts/bench-server.mjs --model MODEL.gguf [--clients 8] [--requests 4] [--max-tokens 64]
//   node scripts/bench-server.mjs --url http://127.0.0.1:8080 [--api-key KEY] ...
//   node scripts/bench-server.mjs --model MODEL.gguf --clients 8 --duration 600     (soak)
//
// Options:
//   --model PATH        start `gemma4 serve` on a free port with this model (else --url)
//   --binary PATH       the gemma4 binary (default build/gemma4)
//   --server-args "..." extra arguments for the server (e.g. "-t 2 -c 16384")
//   --url URL           use a running server
//   --clients N         concurrent streaming clients (default 8)
//   --requests N        requests per client (default 4; ignored with --duration)
//   --duration S        soak: keep sending for S seconds
//   --max-tokens N      tokens per reply (default 64); the end tokens are biased away so every
//                       reply has exactly N tokens
//   --prompt-words N    words in each prompt (default 32; each prompt is different)
//   --json              print the report as JSON
// No dependencies: Node's fetch and streams only.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function parseArgs(argv) {
  const o = { clients: 8, requests: 4, maxTokens: 64, promptWords: 32, binary: join(repo, "build", "gemma4"),
              serverArgs: "", duration: 0, json: false };
  for (let i = 2; i < argv.length; ++i) {
    const a = argv[i], next = () => argv[++i];
    if (a === "--model") o.model = next();
    else if (a === "--binary") o.binary = next();
    else if (a === "--server-args") o.serverArgs = next();
    else if (a === "--url") o.url = next().replace(/\/$/, "");
    else if (a === "--api-key") o.apiKey = next();
    else if (a === "--clients") o.clients = Number(next());
    else if (a === "--requests") o.requests = Number(next());
    else if (a === "--duration") o.duration = Number(next());
    else if (a === "--max-tokens") o.maxTokens = Number(next());
    else if (a === "--prompt-words") o.promptWords = Number(next());
    else if (a === "--json") o.json = true;
    else if (a === "--help" || a === "-h") {
      console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").filter((l) => l.startsWith("//")).join("\n"));
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (!o.model && !o.url) throw new Error("give --model PATH (start a server) or --url URL");
  return o;
}

function startServer(o) {
  return new Promise((resolveServer, reject) => {
    const args = ["serve", "-m", o.model, "--port", "0", "--parallel", String(Math.max(1, o.clients)),
                  ...o.serverArgs.split(/\s+/).filter(Boolean)];
    const child = spawn(o.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr.on("data", (d) => {
      log += d;
      const m = /ready on (http:\/\/[^\s]+)/.exec(log);
      if (m) resolveServer({ child, url: m[1] });
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}):\n${log}`)));
  });
}

function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function metrics(url, headers) {
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  const get = (name) => {
    const m = new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return { generated: get("gemma4_generated_tokens_total"), decodeSeconds: get("gemma4_decode_seconds_total"),
           prefillTokens: get("gemma4_prompt_tokens_evaluated_total"), prefillSeconds: get("gemma4_prefill_seconds_total"),
           active: get("gemma4_active_sequences"), reserved: get("gemma4_kv_reserved_tokens"), steps: get("gemma4_steps_total"),
           kvBytes: get("gemma4_kv_bytes"), ttftSum: get("gemma4_time_to_first_token_seconds_sum"),
           ttftCount: get("gemma4_time_to_first_token_seconds_count") };
}

// Token ids of the end-of-generation markers, to keep replies at exactly max_tokens.
async function endBias(url, headers) {
  const bias = {};
  for (const marker of ["<eos>", "<turn|>", "<|tool_response>"]) {
    const r = await fetch(`${url}/tokenize`, { method: "POST", headers, body: JSON.stringify({ content: marker }) });
    if (!r.ok) continue;
    const { tokens } = await r.json();
    if (tokens.length === 1) bias[tokens[0]] = -100;
  }
  return bias;
}

const words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split(" ");
function prompt(n, seed) {
  const out = [];
  for (let i = 0; i < n; ++i) out.push(words[(seed * 7 + i * 13 + (seed >> 3)) % words.length]);
  return `Request ${seed}: ${out.join(" ")}. Continue the list.`;
}

// One streamed chat completion; resolves with its timings.
async function streamOne(o, url, headers, bias, seed) {
  const body = { model: "bench", stream: true, stream_options: { include_usage: true }, max_tokens: o.maxTokens,
                 temperature: 0, logit_bias: bias, messages: [{ role: "user", content: prompt(o.promptWords, seed) }] };
  const start = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = null, tokens = 0, buffer = "", done = false;
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") { done = true; continue; }
      const j = JSON.parse(data);
      if (j.error) throw new Error(j.error.message);
      const delta = j.choices?.[0]?.delta;
      if (first === null && (delta?.content || delta?.reasoning_content || delta?.tool_calls)) first = performance.now();
      if (j.usage) tokens = j.usage.completion_tokens;
    }
  }
  if (!done) throw new Error("stream ended without [DONE]");
  const end = performance.now();
  return { start, first, end, tokens };  // first: null when no visible text came (e.g. a random model)
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))];
}

async function main() {
  const o = parseArgs(process.argv);
  let server = null, url = o.url;
  if (o.model) {
    server = await startServer(o);
    url = server.url;
  }
  const headers = { "Content-Type": "application/json" };
  if (o.apiKey) headers.Authorization = `Bearer ${o.apiKey}`;
  try {
    const bias = await endBias(url, headers);
    await streamOne({ ...o, maxTokens: 4 }, url, headers, bias, 999999);  // warm-up
    const before = await metrics(url, headers);
    const rssStart = server ? rssMiB(server.child.pid) : NaN;
    const rssSamples = [];
    const sampler = server ? setInterval(() => rssSamples.push(rssMiB(server.child.pid)), 5000) : null;

    const results = [], failures = [];
    const wallStart = performance.now();
    const deadline = o.duration > 0 ? Date.now() + o.duration * 1000 : 0;
    let seed = 0;
    await Promise.all(Array.from({ length: o.clients }, async () => {
      for (let r = 0; deadline ? Date.now() < deadline : r < o.requests; ++r) {
        try {
          results.push(await streamOne(o, url, headers, bias, seed++));
        } catch (e) {
          failures.push(String(e.message ?? e));
        }
      }
    }));
    const wall = (performance.now() - wallStart) / 1000;
    if (sampler) clearInterval(sampler);
    // The last replies end before the scheduler's step that retires them: give it a moment, so the
    // snapshot shows whether every sequence was freed.
    let after = await metrics(url, headers);
    for (let i = 0; i < 50 && after.active > 0; ++i) {
      await new Promise((r) => setTimeout(r, 100));
      after = await metrics(url, headers);
    }

    // Client-side TTFT needs visible text; the server's own TTFT (first sampled token) always works.
    const seen = results.filter((r) => r.first !== null);
    const ttft = seen.map((r) => (r.first - r.start) / 1000).sort((a, b) => a - b);
    const latency = results.map((r) => (r.end - r.start) / 1000).sort((a, b) => a - b);
    const tokens = results.reduce((s, r) => s + r.tokens, 0);
    const perStream = seen.map((r) => (r.tokens - 1) / Math.max(1e-9, (r.end - r.first) / 1000));
    const report = {
      clients: o.clients, requests: results.length, failures: failures.length, max_tokens: o.maxTokens,
      wall_seconds: +wall.toFixed(2),
      completion_tokens: tokens,
      aggregate_tokens_per_second: +(tokens / wall).toFixed(2),
      mean_stream_decode_tokens_per_second: perStream.length ? +(perStream.reduce((a, b) => a + b, 0) / perStream.length).toFixed(2) : null,
      server_decode_tokens_per_second: +((after.generated - before.generated) / Math.max(1e-9, after.decodeSeconds - before.decodeSeconds)).toFixed(2),
      server_prefill_tokens_per_second: +((after.prefillTokens - before.prefillTokens) / Math.max(1e-9, after.prefillSeconds - before.prefillSeconds)).toFixed(2),
      mean_batch_rows_per_step: +((after.generated - before.generated) / Math.max(1, after.steps - before.steps)).toFixed(2),
      ttft_seconds: ttft.length ? { p50: percentile(ttft, 50), p90: percentile(ttft, 90), p99: percentile(ttft, 99) } : null,
      server_mean_ttft_seconds: +((after.ttftSum - before.ttftSum) / Math.max(1, after.ttftCount - before.ttftCount)).toFixed(3),
      latency_seconds: { p50: percentile(latency, 50), p90: percentile(latency, 90), p99: percentile(latency, 99) },
      server_after: { active_sequences: after.active, kv_reserved_tokens: after.reserved, kv_bytes: after.kvBytes },
    };
    if (server) {
      report.server_rss_mib = { start: +rssStart.toFixed(1), end: +rssMiB(server.child.pid).toFixed(1),
                                max: +Math.max(rssStart, ...rssSamples).toFixed(1),
                                // growth under load: the most after the first tenth of the samples
                                // (caches warm) against the most in the last tenth
                                warm: +Math.max(...rssSamples.slice(0, Math.max(1, Math.ceil(rssSamples.length / 10)))).toFixed(1),
                                last: +Math.max(...rssSamples.slice(-Math.max(1, Math.ceil(rssSamples.length / 10)))).toFixed(1) };
    }
    if (failures.length) report.first_failures = failures.slice(0, 5);
    if (o.json) {
      console.log(JSON.stringify(report, null, 2));
    } else {
      const f = (x) => (typeof x === "number" ? x.toFixed(3) : x);
      console.log(`${report.clients} clients, ${report.requests} requests (${report.failures} failed), ${report.max_tokens} tokens each, ${report.wall_seconds} s`);
      console.log(`aggregate: ${report.aggregate_tokens_per_second} tokens/s; per stream ${report.mean_stream_decode_tokens_per_second} tokens/s; ` +
                  `server decode ${report.server_decode_tokens_per_second} t/s, prefill ${report.server_prefill_tokens_per_second} t/s, ` +
                  `${report.mean_batch_rows_per_step} tokens per step`);
      if (report.ttft_seconds)
        console.log(`time to first token: p50 ${f(report.ttft_seconds.p50)} s, p90 ${f(report.ttft_seconds.p90)} s, p99 ${f(report.ttft_seconds.p99)} s`);
      else
        console.log("time to first token: no reply had visible text (a random-weight model?); see the server's");
      console.log(`server time to first token: mean ${f(report.server_mean_ttft_seconds)} s`);
      console.log(`latency:             p50 ${f(report.latency_seconds.p50)} s, p90 ${f(report.latency_seconds.p90)} s, p99 ${f(report.latency_seconds.p99)} s`);
      if (report.server_rss_mib) console.log(`server RSS: ${report.server_rss_mib.start} MiB at start, ${report.server_rss_mib.end} MiB at the end, max ${report.server_rss_mib.max} MiB`);
      if (failures.length) console.log(`failures: ${report.first_failures.join(" | ")}`);
    }
    process.exitCode = failures.length ? 1 : 0;
  } finally {
    if (server) {
      const exited = new Promise((r) => server.child.once("exit", r));
      server.child.kill("SIGTERM");
      await exited;
    }
  }
}

main().catch((e) => {
  console.error(`bench-server: ${e.message ?? e}`);
  process.exit(2);
});
