// `gemma4 serve` driven by the official `openai` npm client: chat (plain, streamed, with an image
// part and an audio part), completions, transcription, models.
//
//   node tests/server/openai.test.mjs
// Environment: G4_CLI_PATH (the gemma4 binary, default build/gemma4), G4_FIXTURES_DIR (default
// ../shared/fixtures next to the repository; CTest passes it as G4_DEFAULT_FIXTURES_DIR). Without the fixture models or node_modules (npm ci
// in tests/server) the test exits with 77 (skipped, visibly) unless CI=true, where that fails.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const ci = process.env.CI === "true";
const binary = process.env.G4_CLI_PATH || join(repo, "build", "gemma4");
const fixtures = join(process.env.G4_FIXTURES_DIR || process.env.G4_DEFAULT_FIXTURES_DIR ||
                     resolve(repo, "..", "shared", "fixtures"), "gemma4-tiny");
const model = join(fixtures, "text-f32.gguf");
const mmproj = join(fixtures, "mmproj-f32.gguf");

function skip(why) {
  if (ci) {
    console.error(`FAIL (CI=true): ${why}`);
    process.exit(1);
  }
  console.error(`SKIPPED: ${why}`);
  process.exit(77);
}
for (const [path, what] of [[model, "fixture model"], [mmproj, "fixture projector"], [binary, "gemma4 binary"]])
  if (!existsSync(path)) skip(`${what} not found: ${path}`);
let OpenAI, toFile;
try {
  ({ default: OpenAI, toFile } = await import("openai"));
} catch {
  skip("the openai package is not installed: run `npm ci` in tests/server");
}

const apiKey = "node-test-key";
let server, client, baseURL;

// Starts the server on a free port; resolves with the port once it says it is ready.
function startServer() {
  return new Promise((resolvePort, reject) => {
    const args = ["serve", "-m", model, "--mmproj", mmproj, "--port", "0", "--parallel", "2", "-c", "8192",
                  "-t", "2", "--image-tokens", "70", "--api-key", apiKey];
    server = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    const timer = setTimeout(() => reject(new Error(`server not ready after 120 s:\n${log}`)), 120_000);
    server.stderr.on("data", (chunk) => {
      log += chunk;
      const m = /ready on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
    server.on("exit", (code) => reject(new Error(`server exited (${code}):\n${log}`)));
  });
}

before(async () => {
  const port = await startServer();
  baseURL = `http://127.0.0.1:${port}/v1`;
  client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 300_000 });
});

after(async () => {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  await exited;
});

const greedy = { temperature: 0, max_tokens: 8 };
const dataUri = (mime, file) => `data:${mime};base64,${readFileSync(file).toString("base64")}`;

test("models lists the served model", async () => {
  const list = await client.models.list();
  const ids = [];
  for await (const m of list) ids.push(m.id);
  assert.deepEqual(ids, ["text-f32"]);
  const one = await client.models.retrieve("text-f32");
  assert.equal(one.object, "model");
});

test("a wrong API key is refused", async () => {
  const wrong = new OpenAI({ baseURL, apiKey: "nope", maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e.status === 401);
});

test("chat completion, plain and streamed, agree", async () => {
  const messages = [{ role: "user", content: "Say something about licences." }];
  const plain = await client.chat.completions.create({ model: "text-f32", messages, ...greedy });
  assert.equal(plain.object, "chat.completion");
  const message = plain.choices[0].message;
  assert.equal(message.role, "assistant");
  assert.equal(typeof message.content, "string");
  assert.ok(plain.usage.prompt_tokens > 5);

  const stream = await client.chat.completions.create({
    model: "text-f32", messages, ...greedy, stream: true, stream_options: { include_usage: true },
  });
  let content = "";
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      content += choice.delta?.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(content, message.content);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, plain.usage.completion_tokens);
});

test("chat with an image part", async () => {
  const text = await client.chat.completions.create({
    model: "text-f32", ...greedy, messages: [{ role: "user", content: "Describe it." }],
  });
  const reply = await client.chat.completions.create({
    model: "text-f32", ...greedy,
    messages: [{ role: "user", content: [
      { type: "image_url", image_url: { url: dataUri("image/png", join(fixtures, "image.png")), detail: "low" } },
      { type: "text", text: "Describe it." },
    ] }],
  });
  assert.equal(typeof reply.choices[0].message.content, "string");
  assert.ok(reply.usage.prompt_tokens >= text.usage.prompt_tokens + 70, "the image's soft tokens are in the prompt");
});

test("chat with an audio part", async () => {
  const reply = await client.chat.completions.create({
    model: "text-f32", ...greedy,
    messages: [{ role: "user", content: [
      { type: "input_audio", input_audio: { data: readFileSync(join(fixtures, "audio.wav")).toString("base64"), format: "wav" } },
      { type: "text", text: "What is said?" },
    ] }],
  });
  assert.equal(typeof reply.choices[0].message.content, "string");
  assert.ok(reply.usage.prompt_tokens > 50, "about 2 s of audio at 25 tokens per second");
});

test("chat with broken media is a 400 naming the part", async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: "text-f32", ...greedy,
      messages: [{ role: "user", content: [
        { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
        { type: "text", text: "?" },
      ] }],
    }),
    (e) => e.status === 400 && /messages\[0\]\.content\[0\]/.test(e.message),
  );
});

test("completions", async () => {
  const c = await client.completions.create({ model: "text-f32", prompt: "The licence says", max_tokens: 6, temperature: 0 });
  assert.equal(c.object, "text_completion");
  assert.equal(typeof c.choices[0].text, "string");
  assert.ok(["stop", "length"].includes(c.choices[0].finish_reason));
  const stream = await client.completions.create({ model: "text-f32", prompt: "The licence says", max_tokens: 6, temperature: 0, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
  assert.equal(text, c.choices[0].text);
});

test("audio transcription", async () => {
  const file = await toFile(readFileSync(join(fixtures, "audio.wav")), "audio.wav", { type: "audio/wav" });
  const t = await client.audio.transcriptions.create({ model: "whisper-1", file, language: "en" });
  assert.equal(typeof t.text, "string");
  const file2 = await toFile(readFileSync(join(fixtures, "audio.wav")), "audio.wav", { type: "audio/wav" });
  const verbose = await client.audio.transcriptions.create({ model: "whisper-1", file: file2, response_format: "verbose_json" });
  assert.equal(verbose.task, "transcribe");
  assert.ok(Math.abs(verbose.duration - 2.0) < 0.1);
  assert.equal(verbose.segments.length, 1);
  const file3 = await toFile(readFileSync(join(fixtures, "audio.wav")), "audio.wav", { type: "audio/wav" });
  const srt = await client.audio.transcriptions.create({ model: "whisper-1", file: file3, response_format: "srt" });
  assert.match(String(srt), /^1\n00:00:00,000 --> /);
});
