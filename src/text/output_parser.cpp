#include "text/output_parser.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "text/jinja_pystr.h"

namespace g4 {

namespace {

// Markers of the Gemma 4 output syntax (spec §6). They are single tokens in the vocabulary but
// arrive here as detokenized text.
constexpr std::string_view kChannelOpen = "<|channel>";
constexpr std::string_view kChannelClose = "<channel|>";
constexpr std::string_view kToolCallOpen = "<|tool_call>";
constexpr std::string_view kToolCallClose = "<tool_call|>";
constexpr std::string_view kStringDelimiter = "<|\"|>";
constexpr std::string_view kTurnEnd = "<turn|>";
constexpr std::string_view kToolResponseOpen = "<|tool_response>";
constexpr std::string_view kEos = "<eos>";

// Longer than any real channel name: past this the "header" is treated as reasoning text.
constexpr size_t kMaxChannelHeader = 64;
constexpr int kMaxToolCallNesting = 64;

enum class MarkerMatch { None, Partial, Full };

// Does text (starting at '<') begin with `marker`, or could it once more input arrives?
MarkerMatch match_marker(std::string_view text, std::string_view marker) {
  if (text.size() >= marker.size()) {
    return text.compare(0, marker.size(), marker) == 0 ? MarkerMatch::Full : MarkerMatch::None;
  }
  return marker.compare(0, text.size(), text) == 0 ? MarkerMatch::Partial : MarkerMatch::None;
}

// Returns the marker among `markers` found at the start of `text`; sets `partial` when `text` is
// a proper prefix of one of them (more input needed).
std::string_view find_marker(std::string_view text, std::initializer_list<std::string_view> markers,
                             bool& partial) {
  partial = false;
  for (std::string_view marker : markers) {
    const MarkerMatch m = match_marker(text, marker);
    if (m == MarkerMatch::Full) return marker;
    if (m == MarkerMatch::Partial) partial = true;
  }
  return {};
}

// Bytes at the end of `text` that start a UTF-8 sequence not yet complete.
size_t incomplete_utf8_tail(std::string_view text) {
  const size_t n = text.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto byte = static_cast<uint8_t>(text[n - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 0;
    if (byte >= 0xC2 && byte <= 0xDF) need = 2;
    if (byte >= 0xE0 && byte <= 0xEF) need = 3;
    if (byte >= 0xF0 && byte <= 0xF4) need = 4;
    return need > back ? back : 0;
  }
  return 0;
}

// JSON strings must be valid UTF-8; ill-formed bytes become U+FFFD.
std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (uint32_t cp : jinja::decode_utf8(text)) {
    if (cp >= 0xDC80 && cp <= 0xDCFF) cp = 0xFFFD;  // an escaped ill-formed byte
    jinja::append_utf8(out, cp);
  }
  return out;
}

// Recursive-descent parser of the tool-call argument syntax.
class ToolCallSyntax {
 public:
  explicit ToolCallSyntax(std::string_view text) : s_(text) {}

  ToolCall parse_call() {
    ToolCall call;
    skip_space();
    if (s_.compare(i_, 5, "call:") == 0) i_ += 5;
    const size_t brace = s_.find('{', i_);
    if (brace == std::string_view::npos) error("expected '{' after the function name");
    call.name = std::string(jinja::py_strip(s_.substr(i_, brace - i_)));
    if (call.name.empty()) error("missing function name");
    if (call.name.find_first_of(",:[]}\"") != std::string::npos ||
        call.name.find('<') != std::string::npos) {
      error("malformed function name '" + call.name + "'");
    }
    call.name = valid_utf8(call.name);
    i_ = brace;
    call.arguments = parse_object(0);
    skip_space();
    if (i_ != s_.size()) error("unexpected text after the arguments");
    return call;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;

  [[noreturn]] void error(const std::string& message) const {
    fail("malformed tool call at byte ", i_, ": ", message);
  }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }

  bool at(std::string_view token) const { return s_.compare(i_, token.size(), token) == 0; }

  std::string parse_string() {
    i_ += kStringDelimiter.size();
    const size_t end = s_.find(kStringDelimiter, i_);
    if (end == std::string_view::npos) error("unterminated <|\"|> string");
    std::string value = valid_utf8(s_.substr(i_, end - i_));
    i_ = end + kStringDelimiter.size();
    return value;
  }

  std::string parse_key() {
    skip_space();
    if (at(kStringDelimiter)) return parse_string();
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ':') {
      if (s_[i_] == '{' || s_[i_] == '}' || s_[i_] == '[' || s_[i_] == ']' || s_[i_] == ',') {
        error("expected 'key:' in an object");
      }
      ++i_;
    }
    if (i_ >= s_.size()) error("expected ':' after an object key");
    const std::string key(jinja::py_strip(s_.substr(start, i_ - start)));
    if (key.empty()) error("empty object key");
    return valid_utf8(key);
  }

  nlohmann::ordered_json parse_object(int depth) {
    if (depth > kMaxToolCallNesting) error("arguments nested too deeply");
    ++i_;  // '{'
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return object;
    }
    while (true) {
      std::string key = parse_key();
      skip_space();
      if (i_ >= s_.size() || s_[i_] != ':') error("expected ':' after key '" + key + "'");
      ++i_;
      object[key] = parse_value(depth + 1);
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return object;
      }
      error("expected ',' or '}' in an object");
    }
  }

  nlohmann::ordered_json parse_array(int depth) {
    if (depth > kMaxToolCallNesting) error("arguments nested too deeply");
    ++i_;  // '['
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    skip_space();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return array;
    }
    while (true) {
      array.push_back(parse_value(depth + 1));
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return array;
      }
      error("expected ',' or ']' in a list");
    }
  }

  nlohmann::ordered_json parse_value(int depth) {
    skip_space();
    if (i_ >= s_.size()) error("missing value");
    if (at(kStringDelimiter)) return parse_string();
    if (s_[i_] == '{') return parse_object(depth);
    if (s_[i_] == '[') return parse_array(depth);
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ']') ++i_;
    const std::string word(jinja::py_strip(s_.substr(start, i_ - start)));
    if (word.empty()) {
      i_ = start;
      error("missing value");
    }
    return scalar(word);
  }

  // Bare words: booleans, null (Python's None, as the template prints it), numbers, else text.
  static nlohmann::ordered_json scalar(const std::string& word) {
    if (word == "true" || word == "True") return true;
    if (word == "false" || word == "False") return false;
    if (word == "null" || word == "None" || word == "none") return nullptr;
    const bool number_start = (word[0] >= '0' && word[0] <= '9') ||
                              ((word[0] == '-' || word[0] == '+') && word.size() > 1);
    if (number_start) {
      const bool integral = word.find_first_of(".eE") == std::string::npos;
      char* end = nullptr;
      errno = 0;
      if (integral) {
        const long long v = std::strtoll(word.c_str(), &end, 10);
        if (end == word.c_str() + word.size() && errno == 0) return static_cast<int64_t>(v);
      }
      errno = 0;
      const double d = std::strtod(word.c_str(), &end);
      if (end == word.c_str() + word.size() && std::isfinite(d) &&
          word.find_first_of("xXnN") == std::string::npos) {
        return d;
      }
    }
    return valid_utf8(word);  // a bare word the model did not quote
  }
};

}  // namespace

ToolCall parse_tool_call(std::string_view body) {
  return ToolCallSyntax(body).parse_call();
}

OutputParser::OutputParser(OutputParserOptions options)
    : state_(options.starts_in_reasoning ? State::Reasoning : State::Content) {}

void OutputParser::emit_text(std::vector<OutputEvent>& events, OutputEventKind kind,
                             std::string_view text) {
  if (!utf8_carry_.empty()) {
    // The held-back bytes come first, in the kind they were produced in.
    const std::string carry = std::move(utf8_carry_);
    utf8_carry_.clear();
    emit_text(events, carry_kind_, carry);
  }
  if (text.empty()) return;
  if (!events.empty() && events.back().kind == kind) {
    events.back().text += text;
    return;
  }
  OutputEvent event;
  event.kind = kind;
  event.text = std::string(text);
  events.push_back(std::move(event));
}

void OutputParser::hold_back_partial_utf8(std::vector<OutputEvent>& events) {
  if (events.empty()) return;
  OutputEvent& last = events.back();
  if (last.kind != OutputEventKind::Reasoning && last.kind != OutputEventKind::Content) return;
  const size_t tail = incomplete_utf8_tail(last.text);
  if (tail == 0) return;
  utf8_carry_.assign(last.text.end() - static_cast<std::ptrdiff_t>(tail), last.text.end());
  carry_kind_ = last.kind;
  last.text.erase(last.text.size() - tail);
  if (last.text.empty()) events.pop_back();
}

std::vector<OutputEvent> OutputParser::feed(std::string_view chunk) {
  if (finished_) fail("OutputParser::feed() called after finish()");
  pending_.append(chunk);
  std::vector<OutputEvent> events;
  process(events, false);
  hold_back_partial_utf8(events);
  return events;
}

std::vector<OutputEvent> OutputParser::finish() {
  if (finished_) return {};
  finished_ = true;
  std::vector<OutputEvent> events;
  process(events, true);
  if (state_ == State::ToolCall) {
    end_tool_call(events, false, {});
  }
  emit_text(events, carry_kind_, {});  // flushes a held-back UTF-8 tail as it is
  return events;
}

void OutputParser::process(std::vector<OutputEvent>& events, bool at_end) {
  size_t pos = 0;
  while (true) {
    bool progressed = false;
    switch (state_) {
      case State::Content:
      case State::Reasoning:
        progressed = process_text(events, pos, at_end);
        break;
      case State::ChannelHeader:
        progressed = process_header(events, pos, at_end);
        break;
      case State::ToolCall:
        progressed = process_tool_call(events, pos, at_end);
        break;
    }
    if (!progressed) break;
  }
  pending_.erase(0, pos);
}

// Reasoning or content text up to the next marker. Returns false when it needs more input.
bool OutputParser::process_text(std::vector<OutputEvent>& events, size_t& pos, bool at_end) {
  const OutputEventKind kind =
      state_ == State::Content ? OutputEventKind::Content : OutputEventKind::Reasoning;
  const std::string_view rest = std::string_view(pending_).substr(pos);
  const size_t lt = rest.find('<');
  if (lt == std::string_view::npos) {
    emit_text(events, kind, rest);
    pos = pending_.size();
    return false;
  }
  emit_text(events, kind, rest.substr(0, lt));
  pos += lt;
  const std::string_view at = std::string_view(pending_).substr(pos);
  bool partial = false;
  const std::string_view marker =
      state_ == State::Content
          ? find_marker(
                at, {kChannelOpen, kToolCallOpen, kChannelClose, kTurnEnd, kToolResponseOpen, kEos},
                partial)
          : find_marker(at, {kChannelClose, kTurnEnd, kToolResponseOpen, kEos}, partial);
  if (marker.empty()) {
    if (partial && !at_end) return false;  // maybe a marker: wait for the next chunk
    emit_text(events, kind, at.substr(0, 1));
    pos += 1;
    return true;
  }
  pos += marker.size();
  if (marker == kChannelOpen) {
    state_ = State::ChannelHeader;
    header_.clear();
  } else if (marker == kToolCallOpen) {
    state_ = State::ToolCall;
    call_body_.clear();
    call_in_string_ = false;
  } else if (marker == kChannelClose && state_ == State::Reasoning) {
    state_ = State::Content;
  }
  // Other markers (end of turn, a stray <channel|>) are dropped.
  return true;
}

// The channel name after <|channel>, up to the newline.
bool OutputParser::process_header(std::vector<OutputEvent>& events, size_t& pos, bool at_end) {
  while (pos < pending_.size()) {
    const char c = pending_[pos];
    if (c == '\n') {
      ++pos;
      state_ = State::Reasoning;
      return true;
    }
    if (c == '<') {
      bool partial = false;
      const std::string_view marker =
          find_marker(std::string_view(pending_).substr(pos), {kChannelClose}, partial);
      if (!marker.empty()) {  // an empty channel: <|channel>thought<channel|>
        pos += marker.size();
        state_ = State::Content;
        return true;
      }
      if (partial && !at_end) return false;
    }
    header_.push_back(c);
    ++pos;
    if (header_.size() > kMaxChannelHeader) {
      // Not a channel name after all: what was read is reasoning.
      state_ = State::Reasoning;
      emit_text(events, OutputEventKind::Reasoning, header_);
      return true;
    }
  }
  return false;
}

// Collects a tool call's body up to <tool_call|>, skipping over <|"|> strings.
bool OutputParser::process_tool_call(std::vector<OutputEvent>& events, size_t& pos, bool at_end) {
  while (pos < pending_.size()) {
    const size_t lt = pending_.find('<', pos);
    if (lt == std::string::npos) {
      call_body_.append(pending_, pos, std::string::npos);
      pos = pending_.size();
      return false;
    }
    call_body_.append(pending_, pos, lt - pos);
    pos = lt;
    const std::string_view at = std::string_view(pending_).substr(pos);
    bool partial = false;
    const std::string_view marker =
        call_in_string_
            ? find_marker(at, {kStringDelimiter}, partial)
            : find_marker(at, {kStringDelimiter, kToolCallClose, kTurnEnd, kToolResponseOpen, kEos},
                          partial);
    if (marker.empty()) {
      if (partial && !at_end) return false;
      call_body_.push_back('<');
      ++pos;
      continue;
    }
    pos += marker.size();
    if (marker == kStringDelimiter) {
      call_body_.append(marker);
      call_in_string_ = !call_in_string_;
      continue;
    }
    end_tool_call(events, marker == kToolCallClose, marker);
    return true;
  }
  return false;
}

void OutputParser::end_tool_call(std::vector<OutputEvent>& events, bool closed,
                                 std::string_view closer) {
  state_ = State::Content;
  OutputEvent event;
  try {
    event.tool_call = parse_tool_call(call_body_);
    if (!closed && closer.empty()) fail("unterminated tool call (no <tool_call|>)");
    event.kind = OutputEventKind::ToolCall;
  } catch (const Error& error) {
    event.kind = OutputEventKind::InvalidToolCall;
    event.error = error.what();
    event.tool_call = ToolCall{};
    event.text =
        std::string(kToolCallOpen) + call_body_ + (closed ? std::string(kToolCallClose) : "");
  }
  call_body_.clear();
  emit_text(events, carry_kind_, {});  // keep event order: held-back text first
  events.push_back(std::move(event));
}

ParsedOutput parse_model_output(std::string_view text, const OutputParserOptions& options) {
  OutputParser parser(options);
  std::vector<OutputEvent> events = parser.feed(text);
  for (OutputEvent& event : parser.finish()) events.push_back(std::move(event));
  ParsedOutput out;
  for (OutputEvent& event : events) {
    switch (event.kind) {
      case OutputEventKind::Reasoning:
        out.reasoning += event.text;
        break;
      case OutputEventKind::Content:
        out.content += event.text;
        break;
      case OutputEventKind::ToolCall:
        out.tool_calls.push_back(std::move(event.tool_call));
        break;
      case OutputEventKind::InvalidToolCall:
        out.content += event.text;
        out.tool_call_errors.push_back(std::move(event.error));
        break;
    }
  }
  return out;
}

}  // namespace g4
