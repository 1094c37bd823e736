#include "server/openai_api.h"

#include <cmath>
#include <limits>
#include <random>

#include "model/model.h"
#include "runtime/chat.h"
#include "server/api_error.h"
#include "text/tokenizer.h"

namespace g4::server {
namespace {

std::vector<std::string> read_stop(JsonFields& f, const ApiLimits& limits) {
  const Json* v = f.value("stop");
  std::vector<std::string> stops;
  if (!v) return stops;
  if (v->is_string()) {
    stops.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const Json& s : *v) {
      if (!s.is_string()) throw bad_request("stop must be a string or an array of strings", "stop");
      stops.push_back(s.get<std::string>());
    }
  } else {
    throw bad_request("stop must be a string or an array of strings", "stop");
  }
  if (int(stops.size()) > limits.max_stop)
    throw bad_request(cat("stop has ", stops.size(), " strings; at most ", limits.max_stop, " are allowed"), "stop");
  std::erase_if(stops, [](const std::string& s) { return s.empty(); });
  return stops;
}

std::vector<std::pair<int32_t, float>> read_logit_bias(JsonFields& f, int64_t n_vocab) {
  std::vector<std::pair<int32_t, float>> bias;
  const Json* v = f.value("logit_bias");
  if (!v) return bias;
  if (!v->is_object()) throw bad_request("logit_bias must be an object mapping token ids to numbers", "logit_bias");
  for (auto it = v->begin(); it != v->end(); ++it) {
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(it.key(), &used);
      if (used != it.key().size()) id = -1;
    } catch (...) {
      id = -1;
    }
    if (id < 0 || id >= n_vocab)
      throw bad_request(cat("logit_bias key '", it.key(), "' is not a token id (0..", n_vocab - 1, ")"), "logit_bias");
    if (!it->is_number() || std::abs(it->get<double>()) > 100)
      throw bad_request(cat("logit_bias[", it.key(), "] must be a number within [-100, 100]"), "logit_bias");
    bias.emplace_back(int32_t(id), float(it->get<double>()));
  }
  return bias;
}

// The sampling fields both endpoints share. Unset fields keep the model's defaults.
void read_sampling(JsonFields& f, const Gemma4Model& model, GenerationParams& p, const ApiLimits& limits) {
  p.sampling = model.sampling_defaults;
  if (auto t = f.number("temperature", 0, 2)) p.sampling.temperature = float(*t);
  if (auto t = f.number("top_p", 0, 1)) p.sampling.top_p = std::max(float(*t), 1e-6f);  // 0: only the top token
  if (auto k = f.integer("top_k", 0, 1 << 30)) p.sampling.top_k = int(*k);
  if (auto m = f.number("min_p", 0, 1)) p.sampling.min_p = float(*m);
  if (auto v = f.number("presence_penalty", -2, 2)) p.sampling.presence_penalty = float(*v);
  if (auto v = f.number("frequency_penalty", -2, 2)) p.sampling.frequency_penalty = float(*v);
  if (auto v = f.number("repeat_penalty", 0.01, 10)) p.sampling.repeat_penalty = float(*v);
  if (auto s = f.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    p.sampling.seed = uint64_t(*s);
  } else {
    p.sampling.seed = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  if (auto n = f.integer("n", 1, limits.max_n)) p.n = int(*n);
  p.stop = read_stop(f, limits);
  p.logit_bias = read_logit_bias(f, model.hp.n_vocab);
  p.stream = f.boolean("stream").value_or(false);
  if (const Json* so = f.value("stream_options")) {
    JsonFields options(*so, "stream_options.");
    p.include_usage = options.boolean("include_usage").value_or(false);
    options.reject_unknown();
    if (!p.stream) throw bad_request("stream_options is only allowed with \"stream\": true", "stream_options");
  }
  f.ignore("user");
  f.ignore("model");  // one model is served, whatever the name asked for
}

bool thinking_from(JsonFields& f, Json& kwargs) {
  bool thinking = false;
  if (auto effort = f.string("reasoning_effort")) {
    if (*effort == "none") thinking = false;
    else if (*effort == "minimal" || *effort == "low" || *effort == "medium" || *effort == "high") thinking = true;
    else throw bad_request("reasoning_effort must be none, minimal, low, medium or high", "reasoning_effort");
  }
  if (auto on = f.boolean("enable_thinking")) thinking = *on;
  if (kwargs.contains("enable_thinking")) {
    if (!kwargs["enable_thinking"].is_boolean())
      throw bad_request("chat_template_kwargs.enable_thinking must be a boolean", "chat_template_kwargs");
    thinking = kwargs["enable_thinking"].get<bool>();
    kwargs.erase("enable_thinking");
  }
  return thinking;
}

void check_messages(const Json& messages) {
  if (!messages.is_array() || messages.empty())
    throw bad_request("messages must be a non-empty array", "messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    if (!m.is_object()) throw bad_request(cat("messages[", i, "] must be an object"), "messages");
    if (!m.contains("role") || !m["role"].is_string())
      throw bad_request(cat("messages[", i, "] needs a string \"role\""), "messages");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "developer" && role != "user" && role != "assistant" && role != "tool")
      throw bad_request(cat("messages[", i, "].role '", role,
                            "' is not one of system, developer, user, assistant, tool"),
                        "messages");
    if (m.contains("content") && !m["content"].is_null() && !m["content"].is_string() && !m["content"].is_array())
      throw bad_request(cat("messages[", i, "].content must be a string, an array of parts or null"), "messages");
  }
}

std::string forced_tool_prefix(const Json* choice, const Json* tools) {
  if (!choice) return "";
  if (!tools) throw bad_request("tool_choice needs tools", "tool_choice");
  if (choice->is_string()) {
    const std::string c = choice->get<std::string>();
    if (c == "auto" || c == "none") return "";
    if (c == "required") return "<|tool_call>call:";
    throw bad_request("tool_choice must be \"none\", \"auto\", \"required\" or a function", "tool_choice");
  }
  if (!choice->is_object() || !choice->contains("function") || !(*choice)["function"].is_object() ||
      !(*choice)["function"].contains("name") || !(*choice)["function"]["name"].is_string())
    throw bad_request("tool_choice must name a function: {\"type\": \"function\", \"function\": {\"name\": ...}}",
                      "tool_choice");
  const std::string name = (*choice)["function"]["name"].get<std::string>();
  for (const Json& t : *tools) {
    const Json& fn = t.contains("function") ? t["function"] : t;
    if (fn.is_object() && fn.value("name", "") == name) return "<|tool_call>call:" + name;
  }
  throw bad_request(cat("tool_choice names '", name, "', which is not among the tools"), "tool_choice");
}

double finite_logprob(float lp) { return std::isfinite(lp) ? double(lp) : -9999.0; }

Json bytes_of(const std::string& s) {
  Json out = Json::array();
  for (unsigned char c : s) out.push_back(int(c));
  return out;
}

}  // namespace

ChatPlan plan_chat(const Json& body, const Gemma4Model& model, const MediaOptions& media, TempFiles& temps,
                   const ApiLimits& limits) {
  JsonFields f(body);
  ChatPlan plan;
  read_sampling(f, model, plan.params, limits);
  auto max_tokens = f.integer("max_tokens", 1, limits.max_tokens);
  if (auto m = f.integer("max_completion_tokens", 1, limits.max_tokens)) max_tokens = m;
  plan.params.max_tokens = max_tokens.value_or(-1);
  const bool logprobs = f.boolean("logprobs").value_or(false);
  if (auto top = f.integer("top_logprobs", 0, 20)) {
    if (!logprobs) throw bad_request("top_logprobs needs \"logprobs\": true", "top_logprobs");
    plan.params.top_logprobs = int(*top);
  } else if (logprobs) {
    plan.params.top_logprobs = 0;
  }
  f.ignore("parallel_tool_calls");
  f.ignore("store");
  f.ignore("metadata");
  f.ignore("service_tier");
  if (const Json* format = f.value("response_format")) {
    if (!format->is_object() || format->value("type", "") != "text")
      throw bad_request("response_format: only {\"type\": \"text\"} is supported (no constrained JSON output)",
                        "response_format");
  }

  Json kwargs = Json::object();
  if (const Json* k = f.value("chat_template_kwargs")) {
    if (!k->is_object()) throw bad_request("chat_template_kwargs must be an object", "chat_template_kwargs");
    kwargs = *k;
  }
  plan.thinking = thinking_from(f, kwargs);

  const Json* messages = f.value("messages");
  if (!messages) throw bad_request("messages is required", "messages");
  check_messages(*messages);
  const Json* tools = f.value("tools");
  if (tools && !tools->is_array()) throw bad_request("tools must be an array", "tools");
  const Json* tool_choice = f.value("tool_choice");
  plan.forced_prefix = forced_tool_prefix(tool_choice, tools);
  const bool tools_off = tool_choice && tool_choice->is_string() && *tool_choice == "none";
  f.reject_unknown();

  Json request = kwargs;
  request["messages"] = *messages;
  plan.media = extract_media(request["messages"], media, temps);
  if (tools && !tools_off && !tools->empty()) request["tools"] = *tools;
  request["enable_thinking"] = plan.thinking;
  request["add_generation_prompt"] = true;
  try {
    plan.prompt_text = render_chat_prompt(model, request) + plan.forced_prefix;
  } catch (const Error& e) {
    throw bad_request(cat("cannot render the conversation: ", e.what()), "messages");
  }
  return plan;
}

CompletionPlan plan_completion(const Json& body, const Gemma4Model& model, const ApiLimits& limits) {
  JsonFields f(body);
  CompletionPlan plan;
  read_sampling(f, model, plan.params, limits);
  plan.params.max_tokens = f.integer("max_tokens", 1, limits.max_tokens).value_or(16);  // OpenAI's default
  if (auto lp = f.integer("logprobs", 0, 20)) plan.params.top_logprobs = int(*lp);
  plan.echo = f.boolean("echo").value_or(false);
  if (auto suffix = f.string("suffix"); suffix && !suffix->empty())
    throw bad_request("suffix (fill-in-the-middle) is not supported", "suffix");
  if (auto best_of = f.integer("best_of", 1, limits.max_n); best_of && *best_of != plan.params.n)
    throw bad_request("best_of must equal n (candidates are not ranked)", "best_of");

  const Json* prompt = f.value("prompt");
  if (!prompt) throw bad_request("prompt is required", "prompt");
  f.reject_unknown();
  const Tokenizer& tok = model.require_tokenizer();
  auto add_text = [&](const std::string& text) {
    plan.prompts.push_back(tokenize_prompt(tok, text, /*add_bos=*/true));
    plan.prompt_texts.push_back(text);
  };
  auto add_ids = [&](const Json& ids) {
    std::vector<int32_t> out;
    for (const Json& id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= model.hp.n_vocab)
        throw bad_request(cat("prompt token ids must be integers in 0..", model.hp.n_vocab - 1), "prompt");
      out.push_back(id.get<int32_t>());
    }
    plan.prompt_texts.push_back(tok.decode(out));
    plan.prompts.push_back(std::move(out));
  };
  if (prompt->is_string()) {
    add_text(prompt->get<std::string>());
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
    add_ids(*prompt);
  } else if (prompt->is_array() && !prompt->empty()) {
    for (const Json& p : *prompt) {
      if (p.is_string()) add_text(p.get<std::string>());
      else if (p.is_array()) add_ids(p);
      else throw bad_request("prompt must be a string, an array of strings or token id arrays", "prompt");
    }
  } else {
    throw bad_request("prompt must be a non-empty string, array of strings or array of token ids", "prompt");
  }
  if (int64_t(plan.prompts.size()) * plan.params.n > limits.max_n)
    throw bad_request(cat("prompts x n = ", plan.prompts.size() * size_t(plan.params.n), " choices; at most ",
                          limits.max_n, " per request"),
                      "prompt");
  for (const auto& p : plan.prompts)
    if (p.empty()) throw bad_request("a prompt is empty", "prompt");
  return plan;
}

uint64_t choice_seed(const GenerationParams& params, int choice) { return params.sampling.seed + uint64_t(choice); }

const char* openai_finish_reason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength:
    case FinishReason::kContext: return "length";
    case FinishReason::kCancelled: return "stop";
  }
  return "stop";
}

Json usage_json(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens) {
  Json u;
  u["prompt_tokens"] = prompt_tokens;
  u["completion_tokens"] = completion_tokens;
  u["total_tokens"] = prompt_tokens + completion_tokens;
  u["prompt_tokens_details"] = {{"cached_tokens", cached_tokens}};
  return u;
}

std::string random_id(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += hex[rng() % 16];
  return id;
}

// ---- chat choices -------------------------------------------------------------------------------

ChatChoice::ChatChoice(int index, const Tokenizer& tokenizer, const ChatPlan& plan)
    : index_(index), tokenizer_(tokenizer), want_logprobs_(plan.params.top_logprobs >= 0) {
  // The prefilled start of a forced tool call is output the model did not have to write.
  if (!plan.forced_prefix.empty()) parser_.feed(plan.forced_prefix);
}

Json ChatChoice::logprob_entry(const TokenLogprobs& lp) const {
  auto entry = [&](int32_t id, float logprob) {
    const std::string piece = tokenizer_.token_to_piece(id, true);
    Json e;
    e["token"] = piece;
    e["logprob"] = finite_logprob(logprob);
    e["bytes"] = bytes_of(piece);
    return e;
  };
  Json e = entry(lp.token, lp.logprob);
  Json top = Json::array();
  for (const auto& [id, l] : lp.top) top.push_back(entry(id, l));
  e["top_logprobs"] = top;
  return e;
}

std::vector<Json> ChatChoice::deltas(const std::vector<OutputEvent>& events) {
  std::vector<Json> out;
  for (const OutputEvent& e : events) {
    Json delta = Json::object();
    switch (e.kind) {
      case OutputEventKind::Reasoning:
        if (e.text.empty()) continue;
        reasoning_ += e.text;
        delta["reasoning_content"] = e.text;
        break;
      case OutputEventKind::Content:
      case OutputEventKind::InvalidToolCall:
        if (e.text.empty()) continue;
        content_ += e.text;
        delta["content"] = e.text;
        break;
      case OutputEventKind::ToolCall: {
        tool_calls_.push_back(e.tool_call);
        tool_call_ids_.push_back(random_id("call_"));
        Json call;
        call["index"] = tool_calls_.size() - 1;
        call["id"] = tool_call_ids_.back();
        call["type"] = "function";
        call["function"] = {{"name", e.tool_call.name}, {"arguments", e.tool_call.arguments.dump()}};
        delta["tool_calls"] = Json::array({call});
        break;
      }
    }
    Json choice;
    choice["index"] = index_;
    choice["delta"] = delta;
    choice["logprobs"] = nullptr;
    if (want_logprobs_ && !pending_logprobs_.empty()) {
      choice["logprobs"] = {{"content", pending_logprobs_}};
      pending_logprobs_ = Json::array();
    }
    choice["finish_reason"] = nullptr;
    out.push_back(std::move(choice));
  }
  return out;
}

std::vector<Json> ChatChoice::on_event(const SequenceEvent& event) {
  if (event.kind == SequenceEventKind::kError) {
    done_ = true;
    return {};
  }
  if (event.logprobs && want_logprobs_) {
    Json entry = logprob_entry(*event.logprobs);
    logprobs_.push_back(entry);
    pending_logprobs_.push_back(std::move(entry));
  }
  std::vector<OutputEvent> events = parser_.feed(event.text);
  if (event.kind == SequenceEventKind::kToken) return deltas(events);

  std::vector<OutputEvent> tail = parser_.finish();
  events.insert(events.end(), tail.begin(), tail.end());
  finish_ = event.finish;
  usage_ = event.usage;
  done_ = true;
  std::vector<Json> out = deltas(events);
  Json last;
  last["index"] = index_;
  last["delta"] = Json::object();
  last["logprobs"] = want_logprobs_ && !pending_logprobs_.empty() ? Json{{"content", pending_logprobs_}} : Json(nullptr);
  last["finish_reason"] = finish_reason();
  out.push_back(std::move(last));
  return out;
}

std::string ChatChoice::finish_reason() const {
  if (!tool_calls_.empty() && finish_ == FinishReason::kStop) return "tool_calls";
  return openai_finish_reason(finish_);
}

Json ChatChoice::choice() const {
  Json message;
  message["role"] = "assistant";
  message["content"] = content_.empty() && !tool_calls_.empty() ? Json(nullptr) : Json(content_);
  if (!reasoning_.empty()) message["reasoning_content"] = reasoning_;
  if (!tool_calls_.empty()) {
    Json calls = Json::array();
    for (size_t i = 0; i < tool_calls_.size(); ++i) {
      Json call;
      call["id"] = tool_call_ids_[i];
      call["type"] = "function";
      call["function"] = {{"name", tool_calls_[i].name}, {"arguments", tool_calls_[i].arguments.dump()}};
      calls.push_back(call);
    }
    message["tool_calls"] = calls;
  }
  Json c;
  c["index"] = index_;
  c["message"] = message;
  c["logprobs"] = want_logprobs_ ? Json{{"content", logprobs_}} : Json(nullptr);
  c["finish_reason"] = finish_reason();
  return c;
}

// ---- completion choices -------------------------------------------------------------------------

CompletionChoice::CompletionChoice(int index, const Tokenizer& tokenizer, const CompletionPlan& plan,
                                   size_t prompt_index)
    : index_(index), tokenizer_(tokenizer), want_logprobs_(plan.params.top_logprobs >= 0) {
  if (plan.echo) echo_ = text_ = plan.prompt_texts[prompt_index];
}

Json CompletionChoice::logprobs_json(size_t from) const {
  Json tokens = Json::array(), token_logprobs = Json::array(), top = Json::array(), offsets = Json::array();
  for (size_t i = from; i < tokens_.size(); ++i) {
    const TokenEntry& t = tokens_[i];
    tokens.push_back(t.piece);
    token_logprobs.push_back(finite_logprob(t.logprob));
    Json alternatives = Json::object();
    for (const auto& [piece, l] : t.top) alternatives[piece] = finite_logprob(l);
    top.push_back(alternatives);
    offsets.push_back(t.offset);
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

std::optional<Json> CompletionChoice::on_event(const SequenceEvent& event) {
  if (event.kind == SequenceEventKind::kError) {
    done_ = true;
    return std::nullopt;
  }
  const size_t logprobs_from = tokens_.size();
  if (event.logprobs && want_logprobs_) {
    TokenEntry t;
    t.piece = tokenizer_.token_to_piece(event.logprobs->token, true);
    t.logprob = event.logprobs->logprob;
    for (const auto& [id, l] : event.logprobs->top) t.top.emplace_back(tokenizer_.token_to_piece(id, true), l);
    t.offset = text_.size();
    tokens_.push_back(std::move(t));
  }
  std::string delta = echo_ + event.text;  // echo: the prompt goes out with the first chunk
  echo_.clear();
  text_ += event.text;
  Json c;
  c["text"] = delta;
  c["index"] = index_;
  c["logprobs"] = want_logprobs_ && tokens_.size() > logprobs_from ? logprobs_json(logprobs_from) : Json(nullptr);
  c["finish_reason"] = nullptr;
  if (event.kind == SequenceEventKind::kDone) {
    finish_ = event.finish;
    usage_ = event.usage;
    done_ = true;
    c["finish_reason"] = openai_finish_reason(finish_);
  }
  return c;
}

Json CompletionChoice::choice() const {
  Json c;
  c["text"] = text_;
  c["index"] = index_;
  c["logprobs"] = want_logprobs_ ? logprobs_json(0) : Json(nullptr);
  c["finish_reason"] = openai_finish_reason(finish_);
  return c;
}

}  // namespace g4::server
