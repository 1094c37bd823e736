#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/thread_pool.h"
#include "model/model.h"
#include "multimodal/media.h"
#include "multimodal/projector.h"
#include "runtime/chat.h"
#include "runtime/prompt.h"
#include "runtime/scheduler.h"
#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/media_parts.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/transcription.h"

namespace g4::server {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollInterval = std::chrono::milliseconds(25);

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---- client liveness ------------------------------------------------------------------------------

// The socket of the connection a request came on, found by its addresses (cpp-httplib does not
// hand it to handlers), so that a waiting handler notices a client that went away.
class ConnectionProbe {
 public:
  explicit ConnectionProbe(const httplib::Request& req) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
      int fd = -1;
      try {
        fd = std::stoi(entry.path().filename().string());
      } catch (...) {
        continue;
      }
      if (matches(fd, req)) {
        fd_ = fd;
        break;
      }
    }
  }

  // True once the peer has closed its side (or the socket failed).
  bool gone() const {
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }

 private:
  static bool matches(int fd, const httplib::Request& req) {
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) return false;
    if (port_of(local) != req.local_port) return false;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) return false;
    return port_of(peer) == req.remote_port && address_of(peer) == req.remote_addr;
  }
  static int port_of(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
    if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
    return -1;
  }
  static std::string address_of(const sockaddr_storage& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, buf, sizeof buf);
    if (a.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, buf, sizeof buf);
    return buf;
  }
  int fd_ = -1;
};

// ---- one HTTP request's generations ---------------------------------------------------------------

// Events of every sequence of one request (choice index, event), filled by the scheduler's worker.
class EventQueue : public std::enable_shared_from_this<EventQueue> {
 public:
  SequenceEventSink sink(int index) {
    auto self = shared_from_this();
    return [self, index](SequenceEvent&& e) {
      std::lock_guard<std::mutex> lock(self->mutex_);
      self->events_.emplace_back(index, std::move(e));
      self->cv_.notify_all();
    };
  }
  std::optional<std::pair<int, SequenceEvent>> pop(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
    auto e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::pair<int, SequenceEvent>> events_;
};

// The sequences of one request; cancelled when the request goes away (client gone, error).
struct Run {
  std::shared_ptr<EventQueue> events = std::make_shared<EventQueue>();
  std::vector<std::shared_ptr<SequenceHandle>> handles;
  ~Run() {
    for (auto& h : handles) h->cancel();
  }
};

ApiError rejection_error(const SchedulerRejection& r) {
  using Reason = SchedulerRejection::Reason;
  switch (r.reason) {
    case Reason::kPromptTooLong:
      return ApiError(400,
                      cat("the prompt has ", r.prompt_tokens, " tokens but the context holds at most ", r.limit,
                          " tokens per request (prompt and completion; --ctx-size); shorten the prompt"),
                      "invalid_request_error", "messages", "context_length_exceeded");
    case Reason::kQueueFull: {
      ApiError e(503, cat("the server is busy: ", r.what(), "; retry later"), "server_error", "", "queue_full");
      e.retry_after_seconds = 2;
      return e;
    }
    case Reason::kStopped: {
      ApiError e(503, r.what(), "server_error", "", "shutting_down");
      e.retry_after_seconds = 5;
      return e;
    }
    case Reason::kInvalid: break;
  }
  return bad_request(r.what());
}

std::string sse(const Json& j) { return "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n"; }

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string route_of(const std::string& path) {
  static const char* routes[] = {"/v1/chat/completions", "/v1/completions",  "/v1/audio/transcriptions",
                                 "/v1/audio/translations", "/v1/models",     "/tokenize",
                                 "/detokenize",          "/health",           "/metrics"};
  for (const char* r : routes)
    if (path.rfind(r, 0) == 0) return r;
  return "other";
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i]) ^ uint8_t(b.empty() ? 0 : b[i % b.size()]);
  return diff == 0;
}

}  // namespace

// ---- the server -----------------------------------------------------------------------------------

struct OpenAiServer::Impl {
  explicit Impl(ServerOptions o) : opt(std::move(o)) {}

  enum class State { kLoading, kReady, kFailed };

  ServerOptions opt;
  httplib::Server http;
  std::thread http_thread;
  int port = -1;
  std::atomic<State> state{State::kLoading};
  std::string load_error;
  std::mutex load_mutex;

  std::unique_ptr<Gemma4Model> model;
  std::unique_ptr<MultimodalProjector> projector;
  std::unique_ptr<ThreadPool> pool, media_pool;
  std::mutex media_mutex;  // the media pool runs one request's media at a time
  std::unique_ptr<Scheduler> scheduler;
  MediaOptions media;
  ApiLimits limits;
  std::string model_id;
  int64_t created = unix_time();
  HttpCounters counters;
  std::filesystem::path temp_dir;

  void routes();
  void send_error(httplib::Response& res, const ApiError& e);
  template <class Fn>
  httplib::Server::Handler wrap(Fn fn);
  const Tokenizer& tokenizer() const { return model->require_tokenizer(); }

  Prompt build_prompt(const std::string& text, const std::vector<MediaItem>& items);
  std::shared_ptr<Run> submit(std::vector<GenerationRequest> requests);
  GenerationRequest make_request(const GenerationParams& params, Prompt prompt, int choice) const;

  void chat(const httplib::Request& req, httplib::Response& res);
  void completions(const httplib::Request& req, httplib::Response& res);
  void transcriptions(const httplib::Request& req, httplib::Response& res, bool translate);
  void models(const httplib::Request& req, httplib::Response& res);
  void tokenize(const httplib::Request& req, httplib::Response& res);
  void detokenize(const httplib::Request& req, httplib::Response& res);
  void health(httplib::Response& res);
  void metrics(httplib::Response& res);
  Json model_card() const;
};

void OpenAiServer::Impl::send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.retry_after_seconds) res.set_header("Retry-After", std::to_string(*e.retry_after_seconds));
  res.set_content(dump(error_json(e)), "application/json");
}

template <class Fn>
httplib::Server::Handler OpenAiServer::Impl::wrap(Fn fn) {
  return [this, fn](const httplib::Request& req, httplib::Response& res) {
    try {
      fn(req, res);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const SchedulerRejection& e) {
      send_error(res, rejection_error(e));
    } catch (const Error& e) {
      send_error(res, bad_request(e.what()));  // g4::Error from request data: media, template, tokens
    } catch (const std::bad_alloc&) {
      send_error(res, ApiError(500, "out of memory", "server_error"));
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, cat("internal error: ", e.what()), "server_error"));
    }
  };
}

Prompt OpenAiServer::Impl::build_prompt(const std::string& text, const std::vector<MediaItem>& items) {
  try {
    if (items.empty()) return PromptBuilder(*model, projector.get(), *media_pool).build(text, items, true);
    if (!projector)
      throw bad_request("this request has media but the server runs without a multimodal projector (--mmproj)", "",
                        "media_not_supported");
    std::lock_guard<std::mutex> lock(media_mutex);
    return PromptBuilder(*model, projector.get(), *media_pool).build(text, items, true);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    throw bad_request(cat("cannot use the media: ", e.what()), "messages", "invalid_media");
  }
}

GenerationRequest OpenAiServer::Impl::make_request(const GenerationParams& params, Prompt prompt, int choice) const {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling = params.sampling;
  r.sampling.seed = choice_seed(params, choice);
  r.max_tokens = params.max_tokens;
  r.stop = params.stop;
  r.top_logprobs = params.top_logprobs;
  r.logit_bias = params.logit_bias;
  return r;
}

std::shared_ptr<Run> OpenAiServer::Impl::submit(std::vector<GenerationRequest> requests) {
  auto run = std::make_shared<Run>();
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].on_event = run->events->sink(int(i));
    try {
      run->handles.push_back(scheduler->submit(std::move(requests[i])));
    } catch (const SchedulerRejection& r) {
      throw rejection_error(r);  // `run` goes away: the ones already queued are cancelled
    }
  }
  return run;
}

// Waits for every choice to end, feeding events to `on_event`; false when the client went away.
template <class OnEvent>
static bool drain(Run& run, size_t n, const ConnectionProbe& probe, OnEvent on_event) {
  size_t done = 0;
  auto checked = Clock::now();
  while (done < n) {
    auto e = run.events->pop(kPollInterval);
    if (!e || Clock::now() - checked > kPollInterval) {  // also while events keep coming
      if (probe.gone()) return false;
      checked = Clock::now();
      if (!e) continue;
    }
    if (e->second.kind != SequenceEventKind::kToken) ++done;
    if (e->second.kind == SequenceEventKind::kError)
      throw ApiError(500, cat("generation failed: ", e->second.error), "server_error");
    if (!on_event(e->first, e->second)) return false;
  }
  return true;
}

// The fields every chunk or body of one response shares; the object type is the argument.
static auto response_envelope(std::string id, std::string model_id) {
  return [id = std::move(id), model_id = std::move(model_id), created_at = unix_time()](const char* object) {
    Json j;
    j["id"] = id;
    j["object"] = object;
    j["created"] = created_at;
    j["model"] = model_id;
    j["system_fingerprint"] = "gemma4.cpp";
    return j;
  };
}

// A choice's stream entries for one event: chat choices give any number, completion choices one
// or none.
static std::vector<Json> stream_entries(std::vector<Json> entries) { return entries; }
static std::vector<Json> stream_entries(std::optional<Json> entry) {
  return entry ? std::vector<Json>{std::move(*entry)} : std::vector<Json>{};
}

// Answers a chat or text completion request once its choices are submitted: one JSON body, or an
// SSE stream of chunks (`opening` entries first, then each choice's entries as events come, usage
// when asked, [DONE]). envelope(object) gives the id/object/created/model fields; usage() the
// token counts. A client that goes away cancels the run (it is released with the response).
template <class Choice, class Envelope, class Usage>
static void respond(httplib::Response& res, const ConnectionProbe& probe, std::shared_ptr<Run> run,
                    std::shared_ptr<std::vector<Choice>> choices, const GenerationParams& params,
                    const char* object, const char* chunk_object, std::vector<Json> opening,
                    Envelope envelope, Usage usage) {
  if (!params.stream) {
    if (!drain(*run, choices->size(), probe,
               [&](int i, const SequenceEvent& e) { return (*choices)[size_t(i)].on_event(e), true; }))
      return;  // the client is gone; `run` cancels what is left
    Json out = envelope(object);
    Json list = Json::array();
    for (const Choice& c : *choices) list.push_back(c.choice());
    out["choices"] = list;
    out["usage"] = usage();
    res.set_content(dump(out), "application/json");
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [run, choices, envelope, usage, probe, chunk_object, opening,
                            include_usage = params.include_usage](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        auto chunk = [&](const Json& entry) {
          Json j = envelope(chunk_object);
          j["choices"] = Json::array({entry});
          return write(sse(j));
        };
        for (const Json& entry : opening)
          if (!chunk(entry)) return false;
        try {
          const bool finished = drain(*run, choices->size(), probe, [&](int i, const SequenceEvent& e) {
            for (const Json& entry : stream_entries((*choices)[size_t(i)].on_event(e)))
              if (!chunk(entry)) return false;
            return sink.is_writable();
          });
          if (!finished) return false;  // client gone: the run is cancelled with the response
        } catch (const ApiError& e) {
          write(sse(error_json(e)));
        }
        if (include_usage) {
          Json j = envelope(chunk_object);
          j["choices"] = Json::array();
          j["usage"] = usage();
          if (!write(sse(j))) return false;
        }
        write("data: [DONE]\n\n");
        sink.done();
        return true;
      });
}

void OpenAiServer::Impl::chat(const httplib::Request& req, httplib::Response& res) {
  const Json body = parse_request_body(req.body);
  TempFiles temps;
  ChatPlan plan = plan_chat(body, *model, media, temps, limits);
  Prompt prompt = build_prompt(plan.prompt_text, plan.media);
  const int64_t prompt_tokens = int64_t(prompt.size());
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < plan.params.n; ++i) requests.push_back(make_request(plan.params, prompt, i));
  auto run = submit(std::move(requests));
  auto choices = std::make_shared<std::vector<ChatChoice>>();
  for (int i = 0; i < plan.params.n; ++i) choices->emplace_back(i, tokenizer(), plan);
  auto usage = [choices, prompt_tokens] {
    int64_t completion = 0;
    for (const ChatChoice& c : *choices) completion += c.usage().completion_tokens;
    return usage_json(prompt_tokens, completion, choices->front().usage().cached_tokens);
  };
  auto envelope = response_envelope(random_id("chatcmpl-"), model_id);
  std::vector<Json> opening;  // the role, before any content
  for (size_t i = 0; i < choices->size(); ++i)
    opening.push_back({{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                       {"finish_reason", nullptr}});
  respond(res, ConnectionProbe(req), run, choices, plan.params, "chat.completion", "chat.completion.chunk",
          std::move(opening), envelope, usage);
}

void OpenAiServer::Impl::completions(const httplib::Request& req, httplib::Response& res) {
  const Json body = parse_request_body(req.body);
  CompletionPlan plan = plan_completion(body, *model, limits);
  std::vector<GenerationRequest> requests;
  auto choices = std::make_shared<std::vector<CompletionChoice>>();
  int64_t prompt_tokens = 0;
  for (size_t p = 0; p < plan.prompts.size(); ++p) {
    prompt_tokens += int64_t(plan.prompts[p].size());
    for (int i = 0; i < plan.params.n; ++i) {
      const int index = int(p) * plan.params.n + i;
      requests.push_back(make_request(plan.params, Prompt::from_tokens(plan.prompts[p]), index));
      choices->emplace_back(index, tokenizer(), plan, p);
    }
  }
  auto run = submit(std::move(requests));
  auto usage = [choices, prompt_tokens] {
    int64_t completion = 0, cached = 0;
    for (const CompletionChoice& c : *choices) {
      completion += c.usage().completion_tokens;
      cached = std::max(cached, c.usage().cached_tokens);
    }
    return usage_json(prompt_tokens, completion, cached);
  };
  auto envelope = response_envelope(random_id("cmpl-"), model_id);
  respond(res, ConnectionProbe(req), run, choices, plan.params, "text_completion", "text_completion", {},
          envelope, usage);
}

void OpenAiServer::Impl::transcriptions(const httplib::Request& req, httplib::Response& res, bool translate) {
  if (!req.is_multipart_form_data())
    throw bad_request("this endpoint takes multipart/form-data with the audio in a \"file\" field");
  static const std::set<std::string> known = {"file",   "model",       "language",
                                              "prompt", "response_format", "temperature",
                                              "stream", "timestamp_granularities[]", "timestamp_granularities"};
  for (const auto& [name, item] : req.files)
    if (!known.count(name)) throw bad_request(cat("unknown field '", name, "'"), name, "unknown_field");
  if (!req.has_file("file") || req.get_file_value("file").content.empty())
    throw bad_request("the audio file is missing: send it in the \"file\" field", "file");
  auto field = [&](const std::string& name) {
    return req.has_file(name) ? req.get_file_value(name).content : std::string();
  };
  const std::string format = field("response_format").empty() ? "json" : field("response_format");
  if (format != "json" && format != "text" && format != "srt" && format != "vtt" && format != "verbose_json")
    throw bad_request("response_format must be json, text, srt, vtt or verbose_json", "response_format");
  const std::string stream_field = field("stream");
  if (!stream_field.empty() && stream_field != "true" && stream_field != "false")
    throw bad_request("stream must be true or false", "stream");
  const bool stream = stream_field == "true";
  float temperature = 0.0f;  // transcription wants the most likely words
  if (!field("temperature").empty()) {
    try {
      size_t used = 0;
      temperature = std::stof(field("temperature"), &used);
      if (used != field("temperature").size() || !(temperature >= 0.0f && temperature <= 1.0f)) throw 0;
    } catch (...) {
      throw bad_request("temperature must be a number within [0, 1]", "temperature");
    }
  }
  const std::string language = translate ? std::string() : language_name(field("language"));
  const std::string context = field("prompt");
  if (!projector || !projector->has_audio())
    throw bad_request("this server has no audio encoder: start it with an --mmproj that has one", "file",
                      "audio_not_supported");

  const httplib::MultipartFormData file = req.get_file_value("file");
  const std::string file_name = file.filename.empty() ? std::string("file") : file.filename;
  std::vector<float> samples;
  try {
    samples = decode_audio_bytes(reinterpret_cast<const uint8_t*>(file.content.data()), file.content.size(),
                                 file_name);
  } catch (const Error& e) {
    throw bad_request(cat("file: cannot decode the audio: ", e.what()), "file", "invalid_media");
  }
  const double duration = double(samples.size()) / kAudioSampleRate;
  const size_t segment_samples = size_t(kTranscriptionSegmentSeconds * kAudioSampleRate);
  std::vector<TranscriptSegment> segments;
  for (size_t at = 0; at < samples.size(); at += segment_samples) {
    const size_t end = std::min(samples.size(), at + segment_samples);
    if (end - at < size_t(kAudioSampleRate / 10) && !segments.empty()) break;  // a sliver after the last cut
    segments.push_back({double(at) / kAudioSampleRate, double(end) / kAudioSampleRate, ""});
  }
  if (segments.empty()) throw bad_request("file: the audio holds no samples", "file");

  // One prompt per segment: the audio first, then the instruction (Google's advice for Gemma 4).
  const std::string instruction =
      translate ? translation_instruction(language, "English") : transcription_instruction(language);
  auto audio = std::make_shared<const std::vector<float>>(std::move(samples));
  auto segment_request = [this, audio, instruction, context, temperature, file_name, segment_samples,
                          translate](size_t i) {
    const std::vector<float>& samples = *audio;
    Json messages = Json::array();
    if (!context.empty())
      messages.push_back({{"role", "system"},
                          {"content", "Context for the transcription (names, spelling, earlier text): " + context}});
    messages.push_back({{"role", "user"},
                        {"content", Json::array({{{"type", "audio"}}, {{"type", "text"}, {"text", instruction}}})}});
    const std::string text = render_chat_prompt(*model, {{"messages", messages}, {"add_generation_prompt", true}});
    const size_t at = i * segment_samples, end = std::min(samples.size(), at + segment_samples);
    MediaItem item;
    item.kind = MediaKind::kAudio;
    item.path = cat(file_name, " (", at / kAudioSampleRate, " s)");
    item.bytes = wav_float32(samples.data() + at, end - at, kAudioSampleRate);
    GenerationParams params;
    params.sampling = model->sampling_defaults;
    params.sampling.temperature = temperature;
    params.sampling.seed = 0;
    // Speech is a few tokens per second (150 words a minute is ~4): a generous bound keeps a
    // model that never stops from running to the context limit. Translations write both texts.
    const double seconds = double(end - at) / kAudioSampleRate;
    params.max_tokens = int64_t((translate ? 2 : 1) * (32 + 16 * std::ceil(seconds)));
    return make_request(params, build_prompt(text, {item}), 0);
  };

  // Segments run `parallel` at a time; text goes out in order.
  struct Transcript {
    std::vector<std::string> texts;
    int64_t input_tokens = 0, output_tokens = 0;
  };
  auto transcript = std::make_shared<Transcript>();
  transcript->texts.resize(segments.size());
  const size_t window = size_t(std::max(1, opt.parallel));
  ConnectionProbe probe(req);
  // Runs everything; on_text(segment text) is called in segment order. False: client gone.
  auto transcribe = [this, transcript, segment_request, n = segments.size(), window, probe, translate](
                        const std::function<bool(const std::string&)>& on_text) {
    std::vector<std::shared_ptr<Run>> runs(n);
    std::vector<bool> finished(n, false);
    std::vector<std::string> raw(n);
    size_t next_submit = 0, next_emit = 0, in_flight = 0;
    auto queue = std::make_shared<EventQueue>();
    auto checked = Clock::now();
    while (next_emit < n) {
      while (in_flight < window && next_submit < n) {
        GenerationRequest r = segment_request(next_submit);
        r.on_event = queue->sink(int(next_submit));
        auto run = std::make_shared<Run>();
        try {
          run->handles.push_back(scheduler->submit(std::move(r)));
        } catch (const SchedulerRejection& e) {
          throw rejection_error(e);
        }
        runs[next_submit++] = run;
        ++in_flight;
      }
      auto e = queue->pop(kPollInterval);
      if (!e || Clock::now() - checked > kPollInterval) {
        if (probe.gone()) return false;
        checked = Clock::now();
        if (!e) continue;
      }
      const size_t i = size_t(e->first);
      const SequenceEvent& ev = e->second;
      if (ev.kind == SequenceEventKind::kError) throw ApiError(500, cat("transcription failed: ", ev.error), "server_error");
      raw[i] += ev.text;
      if (ev.kind == SequenceEventKind::kDone) {
        finished[i] = true;
        --in_flight;
        transcript->input_tokens += ev.usage.prompt_tokens;
        transcript->output_tokens += ev.usage.completion_tokens;
      }
      while (next_emit < n && finished[next_emit]) {
        std::string text = translate ? translation_from_answer(raw[next_emit], "English") : raw[next_emit];
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
        while (!text.empty() && (text.front() == '\n' || text.front() == ' ')) text.erase(0, 1);
        transcript->texts[next_emit] = text;
        if (!on_text(text)) return false;
        runs[next_emit++].reset();
      }
    }
    return true;
  };
  auto usage = [transcript] {
    return Json{{"type", "tokens"},
                {"input_tokens", transcript->input_tokens},
                {"output_tokens", transcript->output_tokens},
                {"total_tokens", transcript->input_tokens + transcript->output_tokens}};
  };
  auto joined = [transcript] {
    std::string all;
    for (const std::string& t : transcript->texts) {
      if (!all.empty() && !t.empty()) all += " ";
      all += t;
    }
    return all;
  };

  if (stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [transcribe, usage, joined](size_t, httplib::DataSink& sink) {
      auto write = [&](const Json& j) {
        const std::string s = sse(j);
        return sink.write(s.data(), s.size());
      };
      bool first = true;
      try {
        if (!transcribe([&](const std::string& text) {
              const std::string delta = (first || text.empty() ? "" : " ") + text;
              first = first && text.empty();
              return delta.empty() || write({{"type", "transcript.text.delta"}, {"delta", delta}});
            }))
          return false;
      } catch (const ApiError& e) {
        write(error_json(e));
        sink.done();
        return true;
      }
      write({{"type", "transcript.text.done"}, {"text", joined()}, {"usage", usage()}});
      sink.done();
      return true;
    });
    return;
  }
  if (!transcribe([](const std::string&) { return true; })) return;
  for (size_t i = 0; i < segments.size(); ++i) segments[i].text = transcript->texts[i];
  if (format == "json") {
    res.set_content(dump(Json{{"text", joined()}, {"usage", usage()}}), "application/json");
  } else if (format == "text") {
    res.set_content(joined() + "\n", "text/plain; charset=utf-8");
  } else if (format == "srt") {
    res.set_content(format_srt(segments), "text/plain; charset=utf-8");
  } else if (format == "vtt") {
    res.set_content(format_vtt(segments), "text/vtt; charset=utf-8");
  } else {
    res.set_content(dump(verbose_json(translate ? "translate" : "transcribe", translate ? "English" : language,
                                      duration, segments, usage())),
                    "application/json");
  }
}

Json OpenAiServer::Impl::model_card() const {
  Json m;
  m["id"] = model_id;
  m["object"] = "model";
  m["created"] = created;
  m["owned_by"] = "gemma4.cpp";
  Json meta;
  meta["n_vocab"] = model->hp.n_vocab;
  meta["n_ctx_train"] = model->hp.n_ctx_train;
  meta["n_embd"] = model->hp.n_embd;
  meta["n_layer"] = model->hp.layers.size();
  meta["ctx_size"] = scheduler->config().kv_budget_tokens;
  meta["parallel"] = scheduler->config().max_active;
  meta["vision"] = projector && projector->has_vision();
  meta["audio"] = projector && projector->has_audio();
  m["meta"] = meta;
  return m;
}

void OpenAiServer::Impl::models(const httplib::Request& req, httplib::Response& res) {
  if (req.matches.size() > 1) {
    const std::string id = req.matches[1];
    if (id != model_id)
      throw ApiError(404, cat("the model '", id, "' does not exist; this server serves '", model_id, "'"),
                     "invalid_request_error", "model", "model_not_found");
    res.set_content(dump(model_card()), "application/json");
    return;
  }
  res.set_content(dump(Json{{"object", "list"}, {"data", Json::array({model_card()})}}), "application/json");
}

void OpenAiServer::Impl::tokenize(const httplib::Request& req, httplib::Response& res) {
  const Json body = parse_request_body(req.body);
  JsonFields f(body);
  const auto content = f.string("content");
  const bool add_special = f.boolean("add_special").value_or(false);
  const bool parse_special = f.boolean("parse_special").value_or(true);
  const bool with_pieces = f.boolean("with_pieces").value_or(false);
  f.ignore("model");
  f.reject_unknown();
  if (!content) throw bad_request("content (a string) is required", "content");
  const Tokenizer& tok = tokenizer();
  std::vector<TokenId> ids = tok.encode(*content, false, parse_special);
  if (add_special && tok.bos_id() != kNoToken) ids.insert(ids.begin(), tok.bos_id());
  Json tokens = Json::array();
  for (TokenId id : ids) {
    if (with_pieces) tokens.push_back({{"id", id}, {"piece", tok.token_to_piece(id, true)}});
    else tokens.push_back(id);
  }
  res.set_content(dump(Json{{"tokens", tokens}}), "application/json");
}

void OpenAiServer::Impl::detokenize(const httplib::Request& req, httplib::Response& res) {
  const Json body = parse_request_body(req.body);
  JsonFields f(body);
  const Json* tokens = f.value("tokens");
  f.ignore("model");
  f.reject_unknown();
  if (!tokens || !tokens->is_array()) throw bad_request("tokens (an array of token ids) is required", "tokens");
  std::vector<TokenId> ids;
  for (const Json& t : *tokens) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= int64_t(tokenizer().n_vocab()))
      throw bad_request(cat("tokens must be integers in 0..", tokenizer().n_vocab() - 1), "tokens");
    ids.push_back(t.get<TokenId>());
  }
  res.set_content(dump(Json{{"content", tokenizer().decode(ids)}}), "application/json");
}

void OpenAiServer::Impl::health(httplib::Response& res) {
  switch (state.load()) {
    case State::kReady: res.set_content(R"({"status":"ok"})", "application/json"); return;
    case State::kLoading:
      res.status = 503;
      res.set_content(R"({"status":"loading"})", "application/json");
      return;
    case State::kFailed: {
      std::lock_guard<std::mutex> lock(load_mutex);
      res.status = 500;
      res.set_content(dump(Json{{"status", "error"}, {"error", load_error}}), "application/json");
      return;
    }
  }
}

void OpenAiServer::Impl::metrics(httplib::Response& res) {
  const SchedulerMetrics m = scheduler ? scheduler->metrics() : SchedulerMetrics{};
  res.set_content(prometheus_text(m, counters.snapshot(), state.load() == State::kReady),
                  "text/plain; version=0.0.4; charset=utf-8");
}

void OpenAiServer::Impl::routes() {
  http.set_payload_max_length(opt.max_body_bytes);
  http.set_read_timeout(opt.timeout_seconds, 0);
  http.set_write_timeout(opt.timeout_seconds, 0);
  http.set_keep_alive_timeout(5);
  // A handler thread per waiting request: the running ones, the queue, and a few for /health.
  const size_t threads = size_t(opt.parallel * opt.max_n + opt.max_queue + 8);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
    if (req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (!opt.api_key.empty()) {
      std::string key = req.get_header_value("Authorization");
      if (key.rfind("Bearer ", 0) == 0) key.erase(0, 7);
      else key = req.get_header_value("x-api-key");
      if (!constant_time_equal(key, opt.api_key)) {
        send_error(res, ApiError(401,
                                 key.empty() ? "no API key: send it as \"Authorization: Bearer KEY\""
                                             : "the API key is wrong",
                                 "authentication_error", "", "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (req.path == "/metrics") return httplib::Server::HandlerResponse::Unhandled;
    if (state.load() != State::kReady) {
      ApiError e(503, state.load() == State::kLoading ? "the model is still loading" : "the model failed to load",
                 "server_error", "", "model_not_ready");
      e.retry_after_seconds = 5;
      send_error(res, e);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    std::string message;
    std::string code;
    switch (res.status) {
      case 404: message = cat("unknown endpoint: ", req.method, " ", req.path); code = "not_found"; break;
      case 413:
        message = cat("the request body is larger than the limit of ", opt.max_body_bytes, " bytes (--max-body-bytes)");
        code = "request_too_large";
        break;
      case 400: message = "malformed HTTP request"; break;
      default: message = cat("HTTP error ", res.status); break;
    }
    res.set_content(dump(error_json(message, res.status >= 500 ? "server_error" : "invalid_request_error", "", code)),
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, ApiError(500, cat("internal error: ", what), "server_error"));
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    counters.count(route_of(req.path), res.status);
    if (opt.log) opt.log(cat(req.remote_addr, " ", req.method, " ", req.path, " ", res.status));
  });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { metrics(res); });
  http.Post("/v1/chat/completions", wrap([this](const auto& req, auto& res) { chat(req, res); }));
  http.Post("/chat/completions", wrap([this](const auto& req, auto& res) { chat(req, res); }));
  http.Post("/v1/completions", wrap([this](const auto& req, auto& res) { completions(req, res); }));
  http.Post("/completions", wrap([this](const auto& req, auto& res) { completions(req, res); }));
  http.Post("/v1/audio/transcriptions", wrap([this](const auto& req, auto& res) { transcriptions(req, res, false); }));
  http.Post("/v1/audio/translations", wrap([this](const auto& req, auto& res) { transcriptions(req, res, true); }));
  http.Get("/v1/models", wrap([this](const auto& req, auto& res) { models(req, res); }));
  http.Get("/models", wrap([this](const auto& req, auto& res) { models(req, res); }));
  http.Get(R"(/v1/models/(.+))", wrap([this](const auto& req, auto& res) { models(req, res); }));
  http.Post("/tokenize", wrap([this](const auto& req, auto& res) { tokenize(req, res); }));
  http.Post("/detokenize", wrap([this](const auto& req, auto& res) { detokenize(req, res); }));
}

// ---- lifecycle ------------------------------------------------------------------------------------

OpenAiServer::OpenAiServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& s = *impl_;
  if (s.opt.parallel < 1) fail("--parallel must be at least 1");
  if (s.opt.max_queue < 0) fail("--max-queue must not be negative");
  if (s.opt.max_body_bytes < 1024) fail("--max-body-bytes must be at least 1024");
  s.limits.max_n = std::max(1, s.opt.max_n);
  if (!s.opt.allowed_media_dir.empty()) {
    std::error_code ec;
    const auto dir = std::filesystem::canonical(s.opt.allowed_media_dir, ec);
    if (ec || !std::filesystem::is_directory(dir))
      fail("--allowed-media-dir ", s.opt.allowed_media_dir, " is not a directory");
    s.media.allowed_dir = dir;
  }
  s.media.image_tokens = s.opt.image_tokens;
  s.media.video_frames = s.opt.video_frames;
  s.media.video_fps = s.opt.video_fps;
  s.media.video_audio = video_audio_mode_from_name(s.opt.video_audio);
  if (!is_valid_image_token_budget(s.opt.image_tokens))
    fail("--image-tokens must be one of 70, 140, 280, 560, 1120");
  // Inline videos are written here for the decoder: private to this process.
  std::string pattern = (std::filesystem::temp_directory_path() / "gemma4-serve-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) fail("cannot create a temporary directory under ", std::filesystem::temp_directory_path());
  s.temp_dir = pattern;
  s.media.temp_dir = s.temp_dir;
  s.model_id = s.opt.alias.empty() ? std::filesystem::path(s.opt.model_path).stem().string() : s.opt.alias;
  s.routes();
}

OpenAiServer::~OpenAiServer() {
  stop();
  std::error_code ec;
  std::filesystem::remove_all(impl_->temp_dir, ec);
}

int OpenAiServer::bind() {
  Impl& s = *impl_;
  if (s.opt.port == 0) {
    s.port = s.http.bind_to_any_port(s.opt.host);
  } else {
    s.port = s.http.bind_to_port(s.opt.host, s.opt.port) ? s.opt.port : -1;
  }
  if (s.port < 0) fail("cannot listen on ", s.opt.host, ":", s.opt.port, " (address in use, or not an address here)");
  return s.port;
}

void OpenAiServer::start_http() {
  Impl& s = *impl_;
  if (s.port < 0) bind();
  s.http_thread = std::thread([&s] { s.http.listen_after_bind(); });
}

void OpenAiServer::load() {
  Impl& s = *impl_;
  try {
    s.model = Gemma4Model::load(s.opt.model_path);
    s.model->require_tokenizer();
    s.model->chat();  // a broken template fails now, not at the first request
    if (!s.opt.mmproj_path.empty()) s.projector = MultimodalProjector::load(s.opt.mmproj_path, int(s.model->hp.n_embd));
    s.pool = std::make_unique<ThreadPool>(s.opt.threads);
    s.media_pool = std::make_unique<ThreadPool>(s.opt.threads);
    SchedulerConfig config;
    const int64_t per_sequence =
        s.model->hp.n_ctx_train > 0 ? std::min<int64_t>(s.model->hp.n_ctx_train, 4096) : 4096;
    config.kv_budget_tokens = s.opt.ctx_size > 0 ? s.opt.ctx_size : per_sequence * s.opt.parallel;
    config.max_active = s.opt.parallel;
    config.max_queue = s.opt.max_queue;
    config.step_tokens = s.opt.batch_tokens;
    config.default_max_tokens = s.opt.default_max_tokens;
    config.max_sequence_tokens = s.model->hp.n_ctx_train;
    config.cache.type_k = s.opt.cache_type_k;
    config.cache.type_v = s.opt.cache_type_v;
    config.cache.ring_extra = s.opt.ring_extra;
    config.prefix_cache = s.opt.prefix_cache;
    s.scheduler = std::make_unique<Scheduler>(*s.model, *s.pool, config, s.opt.matmul);
    s.scheduler->start();
    s.state = Impl::State::kReady;
  } catch (const std::exception& e) {
    {
      std::lock_guard<std::mutex> lock(s.load_mutex);
      s.load_error = e.what();
    }
    s.state = Impl::State::kFailed;
    throw;
  }
}

void OpenAiServer::stop() {
  Impl& s = *impl_;
  if (s.scheduler) s.scheduler->stop();  // waiting handlers get their error events
  if (s.http.is_running() || s.http_thread.joinable()) s.http.stop();
  if (s.http_thread.joinable()) s.http_thread.join();
}

bool OpenAiServer::ready() const { return impl_->state.load() == Impl::State::kReady; }
const ServerOptions& OpenAiServer::options() const { return impl_->opt; }
Scheduler* OpenAiServer::scheduler() { return impl_->scheduler.get(); }

}  // namespace g4::server
