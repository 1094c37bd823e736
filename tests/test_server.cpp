// The OpenAI-compatible server, started for real on a free loopback port and driven over raw
// HTTP: every error case, streaming, determinism of concurrent requests, disconnects, API keys,
// and (with the fixture models) images, audio, video and transcription.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "core/thread_pool.h"
#include "media_writer.h"
#include "model/model.h"
#include "model/random_model.h"
#include "runtime/scheduler.h"
#include "server/http_server.h"
#include "server/openai_api.h"
#include "test_util.h"

namespace g4 {
namespace {

using Json = nlohmann::ordered_json;
using server::OpenAiServer;
using server::ServerOptions;

// A running server on a free port of 127.0.0.1.
class TestServer {
 public:
  explicit TestServer(ServerOptions options, bool load = true) : server_(with_free_port(std::move(options))) {
    port_ = server_.bind();
    server_.start_http();
    if (load) server_.load();
  }
  OpenAiServer& server() { return server_; }
  int port() const { return port_; }
  httplib::Client client(const std::string& key = "") const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(300, 0);
    c.set_write_timeout(60, 0);
    if (!key.empty()) c.set_bearer_token_auth(key.c_str());
    return c;
  }
  httplib::Result post(const std::string& path, const Json& body, const std::string& key = "") const {
    return client(key).Post(path.c_str(), body.dump(), "application/json");
  }
  SchedulerMetrics metrics() { return server_.scheduler()->metrics(); }

 private:
  static ServerOptions with_free_port(ServerOptions o) {
    o.port = 0;
    o.host = "127.0.0.1";
    return o;
  }
  OpenAiServer server_;
  int port_ = -1;
};

Json parse(const std::string& body) { return Json::parse(body); }

// The "data: ..." payloads of an SSE body.
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) end = body.size();
    const std::string event = body.substr(at, end - at);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    at = end + 2;
  }
  return out;
}

// Asserts an OpenAI-shaped error with the status; returns the error object.
Json expect_error(const httplib::Result& r, int status, const std::string& message_part = "") {
  EXPECT_TRUE(r) << "no response";
  if (!r) return {};
  EXPECT_EQ(r->status, status) << r->body;
  Json j;
  try {
    j = Json::parse(r->body);
  } catch (...) {
    ADD_FAILURE() << "error body is not JSON: " << r->body;
    return {};
  }
  EXPECT_TRUE(j.contains("error") && j["error"].is_object()) << r->body;
  if (!j.contains("error")) return {};
  const Json& e = j["error"];
  EXPECT_TRUE(e.contains("message") && e["message"].is_string()) << r->body;
  EXPECT_TRUE(e.contains("type") && e["type"].is_string()) << r->body;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << r->body;
  if (!message_part.empty()) {
    EXPECT_NE(e.value("message", "").find(message_part), std::string::npos) << "message: " << e.value("message", "");
  }
  return e;
}

Json user(const std::string& text) { return Json::array({{{"role", "user"}, {"content", text}}}); }

Json chat_body(const std::string& text, int max_tokens = 8) {
  return {{"messages", user(text)}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

// A tiny random model (window 8) written once for the suite: no fixtures needed.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ThreadPool pool(2);
    RandomModelSpec spec;
    spec.n_ctx_train = 1 << 20;  // metadata only: lets a test run one long generation
    model_path_ = (*dir_ / "random.gguf").string();
    write_random_gemma4(spec, model_path_, pool);
    model_ = Gemma4Model::load(model_path_).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
  }
  static ServerOptions options() {
    ServerOptions o;
    o.model_path = model_path_;
    o.parallel = 4;
    o.ctx_size = 4096;
    o.threads = 2;
    return o;
  }
  // logit_bias that keeps the model from ending (so a request runs to its limit).
  static Json no_end_bias() {
    Json bias = Json::object();
    for (int32_t id : model_->end_of_generation) bias[std::to_string(id)] = -100;
    return bias;
  }
  static inline test::TempDir* dir_ = nullptr;
  static inline std::string model_path_;
  static inline Gemma4Model* model_ = nullptr;
};

TEST_F(ServerTest, HealthSaysLoadingUntilTheModelIsLoaded) {
  TestServer s(options(), /*load=*/false);
  auto r = s.client().Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(parse(r->body)["status"], "loading");
  expect_error(s.post("/v1/chat/completions", chat_body("hi")), 503, "loading");
  s.server().load();
  r = s.client().Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(parse(r->body)["status"], "ok");
}

TEST_F(ServerTest, ChatCompletionPlainAndStreamedAgree) {
  TestServer s(options());
  auto r = s.post("/v1/chat/completions", chat_body("Hello there", 12));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const Json j = parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "random");
  ASSERT_EQ(j["choices"].size(), 1u);
  const Json& choice = j["choices"][0];
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_TRUE(choice["message"]["content"].is_string());
  EXPECT_TRUE(choice["finish_reason"] == "stop" || choice["finish_reason"] == "length");
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 3);
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 12);
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());

  Json body = chat_body("Hello there", 12);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  r = s.post("/v1/chat/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const std::vector<std::string> events = sse_data(r->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string content;
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const Json c = parse(events[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    const Json& delta = c["choices"][0]["delta"];
    if (delta.contains("content")) content += delta["content"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(parse(events[0])["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(content, choice["message"]["content"].get<std::string>()) << "streamed and whole answers differ";
  EXPECT_EQ(finish, choice["finish_reason"]);
  const Json usage_chunk = parse(events[events.size() - 2]);
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], j["usage"]["completion_tokens"]);
}

TEST_F(ServerTest, SixteenConcurrentGreedyRequestsReturnWhatEachReturnsAlone) {
  TestServer s(options());
  std::vector<Json> bodies;
  for (int i = 0; i < 16; ++i) bodies.push_back(chat_body("Request number " + std::to_string(i * 7919), 10));
  std::vector<std::string> alone;
  for (const Json& b : bodies) {
    auto r = s.post("/v1/chat/completions", b);
    ASSERT_TRUE(r && r->status == 200);
    alone.push_back(parse(r->body)["choices"][0]["message"]["content"]);
  }
  std::vector<std::string> together(16);
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i)
    clients.emplace_back([&, i] {
      auto r = s.post("/v1/chat/completions", bodies[size_t(i)]);
      if (r && r->status == 200) together[size_t(i)] = parse(r->body)["choices"][0]["message"]["content"];
    });
  for (auto& t : clients) t.join();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(together[size_t(i)], alone[size_t(i)]) << "request " << i;
  EXPECT_GT(s.metrics().steps, 0);
}

TEST_F(ServerTest, MalformedRequestsGetOpenAiErrors) {
  TestServer s(options());
  auto raw = [&](const std::string& body) {
    return s.client().Post("/v1/chat/completions", body, "application/json");
  };
  expect_error(raw("{not json"), 400, "not valid JSON");
  expect_error(raw("[1, 2]"), 400, "object");
  expect_error(raw(std::string(1000, '[') + std::string(1000, ']')), 400, "nests deeper");
  Json e = expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"temperature", "hot"}}), 400);
  EXPECT_EQ(e["param"], "temperature");
  e = expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"temprature", 0.5}}), 400, "unknown field");
  EXPECT_EQ(e["param"], "temprature");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"temperature", 7}}), 400, "within");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"max_tokens", 0}}), 400, "max_tokens");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"max_tokens", 1.5}}), 400, "integer");
  expect_error(s.post("/v1/chat/completions", {{"model", "x"}}), 400, "messages");
  expect_error(s.post("/v1/chat/completions", {{"messages", Json::array()}}), 400, "non-empty");
  expect_error(s.post("/v1/chat/completions", {{"messages", Json::array({{{"role", "robot"}, {"content", "x"}}})}}),
               400, "role");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"stop", 3}}), 400, "stop");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"n", 99}}), 400, "n");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"top_logprobs", 3}}), 400, "logprobs");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"logit_bias", {{"abc", 1}}}}), 400,
               "logit_bias");
  expect_error(s.post("/v1/chat/completions",
                      {{"messages", user("x")}, {"response_format", {{"type", "json_object"}}}}),
               400, "response_format");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"tool_choice", "required"}}), 400, "tools");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"stream_options", {{"include_usage", true}}}}),
               400, "stream");
  expect_error(s.post("/v1/chat/completions", {{"messages", user("x")}, {"reasoning_effort", "extreme"}}), 400,
               "reasoning_effort");
  // Wrong method or path.
  auto r = s.client().Get("/v1/chat/completions");
  e = expect_error(r, 404, "unknown endpoint");
  expect_error(s.post("/v1/nothing", Json::object()), 404, "/v1/nothing");
  // Completions, tokenize, detokenize check their fields too.
  expect_error(s.post("/v1/completions", {{"prompt", 5}}), 400, "prompt");
  expect_error(s.post("/v1/completions", {{"prompt", "x"}, {"suffix", "y"}}), 400, "suffix");
  expect_error(s.post("/v1/completions", {{"prompt", Json::array({1, 999999})}}), 400, "token ids");
  expect_error(s.post("/tokenize", {{"text", "x"}}), 400, "unknown field");
  expect_error(s.post("/detokenize", {{"tokens", Json::array({-1})}}), 400, "tokens");
  // Media problems name the part.
  Json parts = Json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,@@@"}}}}});
  expect_error(s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", parts}}}}}), 400,
               "messages[0].content[0]");
  parts = Json::array({{{"type", "image_url"}, {"image_url", {{"url", "https://example.com/cat.png"}}}}});
  e = expect_error(s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", parts}}}}}), 400,
                   "no network");
  EXPECT_EQ(e["code"], "remote_url_not_supported");
  parts = Json::array({{{"type", "image_url"}, {"image_url", {{"url", "/etc/passwd"}}}}});
  expect_error(s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", parts}}}}}), 400,
               "--allowed-media-dir");
  parts = Json::array({{{"type", "input_audio"}, {"input_audio", {{"data", "AAAA"}, {"format", "wav"}}}}});
  expect_error(s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", parts}}}}}), 400,
               "projector");
  parts = Json::array({{{"type", "hologram"}}});
  expect_error(s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", parts}}}}}), 400,
               "unknown content part type");
}

TEST_F(ServerTest, OversizedBodiesGet413) {
  ServerOptions o = options();
  o.max_body_bytes = 4096;
  TestServer s(o);
  Json big = chat_body(std::string(8000, 'a'));
  const Json e = expect_error(s.post("/v1/chat/completions", big), 413, "4096");
  EXPECT_EQ(e["code"], "request_too_large");
  auto r = s.post("/v1/chat/completions", chat_body("small", 2));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, PromptLongerThanTheContextIsRefusedWithBothNumbers) {
  ServerOptions o = options();
  o.ctx_size = 256;
  TestServer s(o);
  std::string text;
  for (int i = 0; i < 200; ++i) text += "word" + std::to_string(i) + " ";
  auto r = s.post("/v1/chat/completions", chat_body(text));
  const Json e = expect_error(r, 400, "256");
  EXPECT_EQ(e["code"], "context_length_exceeded");
  const std::string message = e["message"];
  // The prompt's own length is in the message too.
  auto tok = s.post("/tokenize", {{"content", text}});
  ASSERT_TRUE(tok);
  EXPECT_GT(parse(tok->body)["tokens"].size(), 256u);
  EXPECT_NE(message.find("tokens but"), std::string::npos) << message;
}

// Reads from a raw connection until `marker` shows up (or the deadline passes).
bool read_until(int fd, const std::string& marker, std::string& got) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[4096];
  while (got.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, size_t(n));
  }
  return got.find(marker) != std::string::npos;
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{30, 0};  // a test never blocks for ever on a silent server
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string http_post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST_F(ServerTest, FullQueueGets503WithRetryAfter) {
  ServerOptions o = options();
  o.parallel = 1;
  o.max_queue = 0;
  o.ctx_size = 65536;
  TestServer s(o);
  // A long generation holds the only slot while we ask again.
  Json body = chat_body("keep going", 60000);
  body["logit_bias"] = no_end_bias();
  const int fd = connect_to(s.port());
  ASSERT_GE(fd, 0);
  const std::string request = http_post("/v1/chat/completions", body.dump());
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), ssize_t(request.size()));
  for (int i = 0; i < 1000 && s.metrics().active == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(s.metrics().active, 1);
  auto r = s.post("/v1/chat/completions", chat_body("me too"));
  const Json e = expect_error(r, 503, "busy");
  EXPECT_EQ(e["code"], "queue_full");
  EXPECT_FALSE(r->get_header_value("Retry-After").empty());
  ::close(fd);
}

TEST_F(ServerTest, ApiKeyIsRequiredEverywhereButHealth) {
  ServerOptions o = options();
  o.api_key = "sesame";
  TestServer s(o);
  Json e = expect_error(s.post("/v1/chat/completions", chat_body("hi", 2)), 401);
  EXPECT_EQ(e["type"], "authentication_error");
  expect_error(s.post("/v1/chat/completions", chat_body("hi", 2), "wrong"), 401, "wrong");
  expect_error(s.client().Get("/v1/models"), 401);
  expect_error(s.client().Get("/metrics"), 401);
  expect_error(s.post("/tokenize", {{"content", "x"}}), 401);
  auto r = s.client().Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = s.post("/v1/chat/completions", chat_body("hi", 2), "sesame");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = s.client("sesame").Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, ClientThatDisconnectsFreesItsSequenceAtOnce) {
  ServerOptions o = options();
  o.prefix_cache = false;  // so that the memory level is exactly what running sequences hold
  o.ctx_size = 65536;      // room for a generation far longer than the test
  TestServer s(o);
  const SchedulerMetrics before = s.metrics();
  EXPECT_EQ(before.kv_bytes, 0);
  for (bool stream : {true, false}) {
    const SchedulerMetrics start = s.metrics();
    Json body = chat_body("talk forever", 60000);
    body["logit_bias"] = no_end_bias();
    body["stream"] = stream;
    const int fd = connect_to(s.port());
    ASSERT_GE(fd, 0);
    const std::string request = http_post("/v1/chat/completions", body.dump());
    ASSERT_EQ(::send(fd, request.data(), request.size(), 0), ssize_t(request.size()));
    if (stream) {
      std::string got;
      ASSERT_TRUE(read_until(fd, "200 OK", got)) << got;
    }
    for (int i = 0; i < 1000 && s.metrics().generated_tokens - start.generated_tokens < 5; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // tokens are flowing
    SchedulerMetrics during = s.metrics();
    EXPECT_EQ(during.active, 1) << "stream " << stream << ", generated " << during.generated_tokens - start.generated_tokens;
    EXPECT_GT(during.kv_bytes, 0) << "stream " << stream;
    ::close(fd);
    SchedulerMetrics after = s.metrics();
    for (int i = 0; i < 500 && (after.active != 0 || after.kv_bytes != before.kv_bytes); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      after = s.metrics();
    }
    EXPECT_EQ(after.active, 0) << "stream " << stream;
    EXPECT_EQ(after.kv_bytes, before.kv_bytes) << "memory back to its level";
    EXPECT_EQ(after.kv_reserved_tokens, 0);
    EXPECT_LT(after.generated_tokens - start.generated_tokens, 30000) << "stopped long before max_tokens";
  }
  EXPECT_EQ(s.metrics().requests_cancelled, 2);
}

TEST_F(ServerTest, CompletionsTokenizeModelsAndMetrics) {
  TestServer s(options());
  auto r = s.post("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 6}, {"temperature", 0},
                                      {"logprobs", 2}, {"echo", true}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  Json j = parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  const std::string text = j["choices"][0]["text"];
  EXPECT_EQ(text.rfind("Once upon a time", 0), 0u) << "echo";
  const Json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), lp["token_logprobs"].size());
  EXPECT_EQ(lp["tokens"].size(), j["usage"]["completion_tokens"].get<size_t>());
  if (!lp["top_logprobs"].empty()) {
    EXPECT_LE(lp["top_logprobs"][0].size(), 2u);
  }

  // Token-id prompt, two prompts x n = 2.
  r = s.post("/v1/completions", {{"prompt", Json::array({"a b", "c d"})}, {"n", 2}, {"max_tokens", 3}, {"seed", 7}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  j = parse(r->body);
  ASSERT_EQ(j["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(j["choices"][i]["index"], i);

  r = s.post("/tokenize", {{"content", "Hello world"}, {"add_special", true}, {"with_pieces", true}});
  ASSERT_TRUE(r && r->status == 200);
  j = parse(r->body);
  ASSERT_GE(j["tokens"].size(), 2u);
  EXPECT_EQ(j["tokens"][0]["id"], 2);  // <bos>
  Json ids = Json::array();
  for (const Json& t : j["tokens"]) ids.push_back(t["id"]);
  r = s.post("/detokenize", {{"tokens", ids}});
  ASSERT_TRUE(r && r->status == 200);
  EXPECT_EQ(parse(r->body)["content"], "<bos>Hello world");

  r = s.client().Get("/v1/models");
  ASSERT_TRUE(r && r->status == 200);
  j = parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "random");
  EXPECT_EQ(j["data"][0]["meta"]["ctx_size"], 4096);
  r = s.client().Get("/v1/models/random");
  ASSERT_TRUE(r && r->status == 200);
  expect_error(s.client().Get("/v1/models/gpt-4"), 404, "gpt-4");

  r = s.client().Get("/metrics");
  ASSERT_TRUE(r && r->status == 200);
  for (const char* name : {"gemma4_requests_submitted_total", "gemma4_queue_depth", "gemma4_prompt_tokens_total",
                           "gemma4_generated_tokens_total", "gemma4_prefill_tokens_per_second",
                           "gemma4_decode_tokens_per_second", "gemma4_kv_used_ratio",
                           "gemma4_time_to_first_token_seconds_bucket{le=\"+Inf\"}",
                           "gemma4_http_requests_total{route=\"/v1/completions\",status=\"200\"}"})
    EXPECT_NE(r->body.find(name), std::string::npos) << name;
}

TEST_F(ServerTest, SamplingParametersLogprobsAndChoices) {
  TestServer s(options());
  Json body = chat_body("Pick something", 5);
  body["temperature"] = 1.2;
  body["top_p"] = 0.9;
  body["top_k"] = 20;
  body["min_p"] = 0.01;
  body["presence_penalty"] = 0.5;
  body["frequency_penalty"] = 0.5;
  body["seed"] = 42;
  body["n"] = 3;
  body["logprobs"] = true;
  body["top_logprobs"] = 2;
  body["stop"] = Json::array({"\n\n"});
  auto r1 = s.post("/v1/chat/completions", body), r2 = s.post("/v1/chat/completions", body);
  ASSERT_TRUE(r1 && r2);
  ASSERT_EQ(r1->status, 200) << r1->body;
  const Json a = parse(r1->body), b = parse(r2->body);
  ASSERT_EQ(a["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a["choices"][i]["message"], b["choices"][i]["message"]) << "same seed, same answer";
    const Json& content = a["choices"][i]["logprobs"]["content"];
    EXPECT_EQ(content.size(), a["choices"][i]["message"].contains("content") ? content.size() : 0u);
    for (const Json& t : content) {
      EXPECT_LE(t["logprob"].get<double>(), 0.0);
      EXPECT_EQ(t["top_logprobs"].size(), 2u);
      EXPECT_TRUE(t["bytes"].is_array());
    }
  }
  EXPECT_EQ(a["usage"]["completion_tokens"].get<int>(),
            a["choices"][0]["logprobs"]["content"].size() + a["choices"][1]["logprobs"]["content"].size() +
                a["choices"][2]["logprobs"]["content"].size());
}

TEST_F(ServerTest, MultiTurnChatReusesTheCachedPrefix) {
  TestServer s(options());
  Json messages = user("First question");
  auto r = s.post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 6}, {"temperature", 0}});
  ASSERT_TRUE(r && r->status == 200);
  const Json first = parse(r->body);
  messages.push_back({{"role", "assistant"}, {"content", first["choices"][0]["message"]["content"]}});
  messages.push_back({{"role", "user"}, {"content", "Second question"}});
  r = s.post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 6}, {"temperature", 0}});
  ASSERT_TRUE(r && r->status == 200);
  const Json second = parse(r->body);
  const int cached = second["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_GT(cached, first["usage"]["prompt_tokens"].get<int>() / 2) << "the first turn was not reused";
  EXPECT_LT(cached, second["usage"]["prompt_tokens"].get<int>());
}

TEST(ServerApiTest, ChatChoiceSeparatesReasoningContentAndToolCalls) {
  test::TempDir dir;
  ThreadPool pool(1);
  const std::string path = (dir / "m.gguf").string();
  write_random_gemma4(RandomModelSpec{}, path, pool);
  const auto model = Gemma4Model::load(path);
  server::ChatPlan plan;
  auto token = [](const std::string& text) {
    SequenceEvent e;
    e.kind = SequenceEventKind::kToken;
    e.text = text;
    return e;
  };
  SequenceEvent done;
  done.kind = SequenceEventKind::kDone;
  done.finish = FinishReason::kStop;

  server::ChatChoice thinking(0, model->require_tokenizer(), plan);
  std::string reasoning, content;
  for (const char* piece : {"<|chan", "nel>thought\nLet me", " think<channel|>The ", "answer."}) {
    for (const Json& d : thinking.on_event(token(piece))) {
      if (d["delta"].contains("reasoning_content")) reasoning += d["delta"]["reasoning_content"].get<std::string>();
      if (d["delta"].contains("content")) content += d["delta"]["content"].get<std::string>();
    }
  }
  thinking.on_event(done);
  EXPECT_EQ(reasoning, "Let me think");
  EXPECT_EQ(content, "The answer.");
  const Json c = thinking.choice();
  EXPECT_EQ(c["message"]["reasoning_content"], "Let me think");
  EXPECT_EQ(c["message"]["content"], "The answer.");
  EXPECT_EQ(c["finish_reason"], "stop");

  // A forced tool call: the prefix was prefilled, the model writes the rest.
  plan.forced_prefix = "<|tool_call>call:get_weather";
  server::ChatChoice tool(0, model->require_tokenizer(), plan);
  std::vector<Json> deltas = tool.on_event(token("{city:<|\"|>Paris<|\"|>}<tool_call|>"));
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0]["delta"]["tool_calls"][0]["function"]["name"], "get_weather");
  tool.on_event(done);
  const Json t = tool.choice();
  EXPECT_TRUE(t["message"]["content"].is_null());
  ASSERT_EQ(t["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(t["message"]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(Json::parse(t["message"]["tool_calls"][0]["function"]["arguments"].get<std::string>())["city"], "Paris");
  EXPECT_EQ(t["finish_reason"], "tool_calls");
}

// ---- with the fixture models: media and transcription ----------------------------------------------

std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(bytes[i]) << 16 | uint32_t(bytes[i + 1]) << 8 | bytes[i + 2];
    for (int k = 3; k >= 0; --k) out += table[(v >> (6 * k)) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint32_t(bytes[i]) << 16;
    out += std::string{table[(v >> 18) & 63], table[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = uint32_t(bytes[i]) << 16 | uint32_t(bytes[i + 1]) << 8;
    out += std::string{table[(v >> 18) & 63], table[(v >> 12) & 63], table[(v >> 6) & 63], '='};
  }
  return out;
}

class ServerMediaTest : public ::testing::Test {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.model_path = (test::fixtures_dir() / "gemma4-tiny/text-f32.gguf").string();
    o.mmproj_path = (test::fixtures_dir() / "gemma4-tiny/mmproj-f32.gguf").string();
    o.parallel = 2;
    o.ctx_size = 8192;
    o.threads = 2;
    o.image_tokens = 70;
    return o;
  }
  static Json media_chat(const Json& part, const std::string& text = "What is this?") {
    return {{"messages", {{{"role", "user"}, {"content", Json::array({part, {{"type", "text"}, {"text", text}}})}}}},
            {"max_tokens", 4},
            {"temperature", 0}};
  }
};

TEST_F(ServerMediaTest, ImageAudioAndVideoPartsAndLocalFiles) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  G4_REQUIRE_FIXTURE("gemma4-tiny/mmproj-f32.gguf");
  test::TempDir media_dir;
  std::filesystem::copy_file(test::fixtures_dir() / "gemma4-tiny/image.png", media_dir / "image.png");
  ServerOptions o = options();
  o.allowed_media_dir = media_dir.path().string();
  TestServer s(o);

  auto text_only = s.post("/v1/chat/completions", chat_body("What is this?", 4));
  ASSERT_TRUE(text_only && text_only->status == 200) << (text_only ? text_only->body : "");
  const int text_tokens = parse(text_only->body)["usage"]["prompt_tokens"];

  const auto png = test::read_file_bytes(test::fixtures_dir() / "gemma4-tiny/image.png");
  auto r = s.post("/v1/chat/completions",
                  media_chat({{"type", "image_url"},
                              {"image_url", {{"url", "data:image/png;base64," + base64(png)}, {"detail", "low"}}}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const int image_tokens = parse(r->body)["usage"]["prompt_tokens"];
  EXPECT_GE(image_tokens, text_tokens + 70) << "70 soft tokens and the image markers";

  // The same image as a local file under the allowed directory; a path outside is refused.
  r = s.post("/v1/chat/completions", media_chat({{"type", "image_url"}, {"image_url", {{"url", "image.png"}, {"detail", "low"}}}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(parse(r->body)["usage"]["prompt_tokens"], image_tokens);
  expect_error(s.post("/v1/chat/completions", media_chat({{"type", "image_url"}, {"image_url", {{"url", "../../etc/passwd"}}}})),
               400);
  expect_error(s.post("/v1/chat/completions", media_chat({{"type", "image_url"}, {"image_url", {{"url", "file:///etc/hostname"}}}})),
               400, "outside");

  const auto wav = test::read_file_bytes(test::fixtures_dir() / "gemma4-tiny/audio.wav");
  r = s.post("/v1/chat/completions", media_chat({{"type", "input_audio"}, {"input_audio", {{"data", base64(wav)}, {"format", "wav"}}}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_GT(parse(r->body)["usage"]["prompt_tokens"].get<int>(), text_tokens + 40);  // ~2 s of audio at 25/s

  // Broken media: a 400 naming the part.
  std::vector<uint8_t> broken(png.begin(), png.begin() + 100);
  expect_error(s.post("/v1/chat/completions",
                      media_chat({{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + base64(broken)}}}})),
               400, "messages[0].content[0]");

  if (test::have_encoder("mpeg4")) {
    const auto video_path = media_dir / "clip.mp4";
    {
      test::MediaWriter writer(video_path);
      const int v = writer.add_video("mpeg4", 96, 96, 4, AV_PIX_FMT_YUV420P, {{"qscale", "3"}});
      for (int i = 0; i < 8; ++i) {
        RgbImage im;
        im.width = im.height = 96;
        im.rgb.assign(96 * 96 * 3, uint8_t(20 * i));
        writer.write_video(v, im);
      }
      writer.finish();
    }
    const auto mp4 = test::read_file_bytes(video_path);
    Json part = {{"type", "video_url"}, {"video_url", {{"url", "data:video/mp4;base64," + base64(mp4)}}}};
    r = s.post("/v1/chat/completions", media_chat(part));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_GT(parse(r->body)["usage"]["prompt_tokens"].get<int>(), text_tokens + 8 * 70);
    std::vector<uint8_t> junk(mp4.begin(), mp4.begin() + 64);
    part = {{"type", "video_url"}, {"video_url", {{"url", "data:video/mp4;base64," + base64(junk)}}}};
    expect_error(s.post("/v1/chat/completions", media_chat(part)), 400, "messages[0].content[0]");
  }
}

// A multipart upload to an audio endpoint.
httplib::Result upload(const TestServer& s, const std::string& path, const std::vector<uint8_t>& audio,
                       httplib::MultipartFormDataItems fields) {
  fields.push_back({"file", std::string(audio.begin(), audio.end()), "speech.wav", "audio/wav"});
  return s.client().Post(path.c_str(), fields);
}

TEST_F(ServerMediaTest, TranscriptionAndTranslationInEveryFormat) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  G4_REQUIRE_FIXTURE("gemma4-tiny/mmproj-f32.gguf");
  TestServer s(options());
  const auto wav = test::read_file_bytes(test::fixtures_dir() / "gemma4-tiny/audio.wav");
  auto r = upload(s, "/v1/audio/transcriptions", wav, {{"model", "whisper-1", "", ""}, {"language", "en", "", ""}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const Json j = parse(r->body);
  ASSERT_TRUE(j["text"].is_string());
  EXPECT_GT(j["usage"]["input_tokens"].get<int>(), 40);
  const std::string text = j["text"];

  r = upload(s, "/v1/audio/transcriptions", wav, {{"response_format", "text", "", ""}, {"language", "en", "", ""}});
  ASSERT_TRUE(r && r->status == 200);
  EXPECT_EQ(r->body, text + "\n") << "greedy: the same words every time";
  r = upload(s, "/v1/audio/transcriptions", wav, {{"response_format", "srt", "", ""}, {"language", "en", "", ""}});
  ASSERT_TRUE(r && r->status == 200);
  EXPECT_EQ(r->body.rfind("1\n00:00:00,000 --> 00:00:0", 0), 0u) << r->body;
  r = upload(s, "/v1/audio/transcriptions", wav, {{"response_format", "vtt", "", ""}, {"language", "en", "", ""}});
  ASSERT_TRUE(r && r->status == 200);
  EXPECT_EQ(r->body.rfind("WEBVTT\n\n00:00:00.000 --> ", 0), 0u) << r->body;
  r = upload(s, "/v1/audio/transcriptions", wav, {{"response_format", "verbose_json", "", ""}, {"language", "en", "", ""}});
  ASSERT_TRUE(r && r->status == 200);
  const Json v = parse(r->body);
  EXPECT_EQ(v["task"], "transcribe");
  EXPECT_EQ(v["language"], "english");
  EXPECT_NEAR(v["duration"].get<double>(), 2.0, 0.1);
  EXPECT_EQ(v["segments"].size(), 1u);
  EXPECT_EQ(v["text"], text);

  r = upload(s, "/v1/audio/transcriptions", wav, {{"stream", "true", "", ""}, {"language", "en", "", ""}});
  ASSERT_TRUE(r && r->status == 200);
  const auto events = sse_data(r->body);
  ASSERT_FALSE(events.empty());
  const Json done = parse(events.back());
  EXPECT_EQ(done["type"], "transcript.text.done");
  EXPECT_EQ(done["text"], text);

  r = upload(s, "/v1/audio/translations", wav, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;

  // Errors: no file, bad format, bad language, broken audio, unknown field, not multipart.
  expect_error(s.client().Post("/v1/audio/transcriptions", httplib::MultipartFormDataItems{{"model", "x", "", ""}}),
               400, "file");
  expect_error(upload(s, "/v1/audio/transcriptions", wav, {{"response_format", "mp3", "", ""}}), 400, "response_format");
  expect_error(upload(s, "/v1/audio/transcriptions", wav, {{"language", "xx", "", ""}}), 400, "language");
  expect_error(upload(s, "/v1/audio/transcriptions", {1, 2, 3, 4, 5}, {}), 400, "file");
  expect_error(upload(s, "/v1/audio/transcriptions", wav, {{"colour", "blue", "", ""}}), 400, "unknown field");
  expect_error(s.post("/v1/audio/transcriptions", {{"file", "x"}}), 400, "multipart");
}

}  // namespace
}  // namespace g4
