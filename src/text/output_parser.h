// Splits Gemma 4 model output into reasoning, answer text and tool calls (spec §6), as a stream.
//
// Output syntax:
//   <|channel>thought\n ...reasoning... <channel|> answer text
//   <|tool_call>call:NAME{key:value,...}<tool_call|>
// Tool-call values: strings wrapped in <|"|>...<|"|> (taken verbatim: they may contain braces,
// commas, quotes and newlines), {key:value} objects (keys bare or <|"|>-wrapped), [a,b] lists,
// numbers, true/false and null (written None/none/null). Bare words that are none of these are
// kept as strings.
//
// Streaming: feed() text chunks as they are detokenized, in any split; each call returns the
// events that are certain so far. A possible start of a marker ("<|chan") and an incomplete UTF-8
// sequence at the end of a chunk are held back until the next chunk decides, so reasoning and
// content deltas never contain marker fragments and always end on a code point boundary. After
// concatenating adjacent deltas of the same kind, the events do not depend on how the text was
// split. finish() flushes what is held back.
//
// Decisions:
//   - End-of-turn markers (<turn|>, <eos>, <|tool_response>) are dropped from reasoning and
//     content; a stray <channel|> in content is dropped too.
//   - A tool call that does not parse, or is still open at finish(), becomes an
//     InvalidToolCall event carrying the raw markup and the reason; nothing is silently lost.
//     parse_model_output() appends that raw text to the content and lists the reason.
//   - A call closed by <|tool_response>, <turn|> or <eos> instead of <tool_call|> is accepted
//     when its body parses (the intent is unambiguous).
//   - Inside the thought channel only <channel|> (and end-of-turn markers) are recognized; a
//     <|tool_call> there is reasoning text.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace g4 {

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
};

enum class OutputEventKind : uint8_t { Reasoning, Content, ToolCall, InvalidToolCall };

struct OutputEvent {
  OutputEventKind kind = OutputEventKind::Content;
  std::string text;    // Reasoning / Content: the delta; InvalidToolCall: the raw markup
  ToolCall tool_call;  // ToolCall
  std::string error;   // InvalidToolCall: why it was rejected
};

struct OutputParserOptions {
  // The prompt ended inside an open thought channel (a prefilled "<|channel>thought\n"), so the
  // output starts with reasoning.
  bool starts_in_reasoning = false;
};

class OutputParser {
 public:
  explicit OutputParser(OutputParserOptions options = {});

  std::vector<OutputEvent> feed(std::string_view chunk);
  std::vector<OutputEvent> finish();

 private:
  enum class State : uint8_t { Content, ChannelHeader, Reasoning, ToolCall };

  State state_;
  std::string pending_;  // input not yet turned into events
  std::string header_;   // channel name being read ("thought")
  std::string call_body_;
  bool call_in_string_ = false;
  std::string utf8_carry_;  // incomplete UTF-8 sequence held back from the last delta
  OutputEventKind carry_kind_ = OutputEventKind::Content;
  bool finished_ = false;

  void process(std::vector<OutputEvent>& events, bool at_end);
  bool process_text(std::vector<OutputEvent>& events, size_t& pos, bool at_end);
  bool process_header(std::vector<OutputEvent>& events, size_t& pos, bool at_end);
  bool process_tool_call(std::vector<OutputEvent>& events, size_t& pos, bool at_end);
  void end_tool_call(std::vector<OutputEvent>& events, bool closed, std::string_view closer);
  void emit_text(std::vector<OutputEvent>& events, OutputEventKind kind, std::string_view text);
  void hold_back_partial_utf8(std::vector<OutputEvent>& events);
};

struct ParsedOutput {
  std::string reasoning;
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::vector<std::string>
      tool_call_errors;  // one per InvalidToolCall (its raw text is in content)
};

// Whole-output convenience over OutputParser.
ParsedOutput parse_model_output(std::string_view text, const OutputParserOptions& options = {});

// Parses what lies between <|tool_call> and <tool_call|>: "call:NAME{...}" ("call:" optional).
// Throws g4::Error saying what is malformed and where (byte offset).
ToolCall parse_tool_call(std::string_view body);

}  // namespace g4
