#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "core/error.h"
#include "text/output_parser.h"

namespace g4 {
namespace {

using json = nlohmann::ordered_json;

// Events with adjacent deltas of the same kind merged: the split-independent form.
struct Merged {
  OutputEventKind kind;
  std::string text;
  std::string name;
  std::string arguments;
  bool operator==(const Merged&) const = default;
};

void merge_into(std::vector<Merged>& out, const std::vector<OutputEvent>& events) {
  for (const OutputEvent& e : events) {
    const bool is_text = e.kind == OutputEventKind::Reasoning || e.kind == OutputEventKind::Content;
    EXPECT_TRUE(!is_text || !e.text.empty()) << "empty delta";
    if (is_text && !out.empty() && out.back().kind == e.kind) {
      out.back().text += e.text;
      continue;
    }
    out.push_back({e.kind, e.text, e.tool_call.name,
                   e.kind == OutputEventKind::ToolCall ? e.tool_call.arguments.dump() : ""});
  }
}

std::vector<Merged> parse_in_chunks(std::string_view text, const std::vector<size_t>& cuts,
                                    OutputParserOptions options = {}) {
  OutputParser parser(options);
  std::vector<Merged> out;
  size_t start = 0;
  for (size_t cut : cuts) {
    merge_into(out, parser.feed(text.substr(start, cut - start)));
    start = cut;
  }
  merge_into(out, parser.feed(text.substr(start)));
  merge_into(out, parser.finish());
  return out;
}

std::string describe(const std::vector<Merged>& events) {
  std::ostringstream s;
  for (const Merged& e : events) {
    s << "[" << static_cast<int>(e.kind) << " " << e.text << e.name << e.arguments << "]";
  }
  return s.str();
}

// Splitting at every byte boundary (two chunks) and feeding byte by byte give the same events.
void expect_split_invariant(std::string_view text, OutputParserOptions options = {}) {
  const std::vector<Merged> whole = parse_in_chunks(text, {}, options);
  for (size_t cut = 1; cut < text.size(); ++cut) {
    const std::vector<Merged> split = parse_in_chunks(text, {cut}, options);
    ASSERT_EQ(split, whole) << "cut at " << cut << " of: " << text << "\nwhole: " << describe(whole)
                            << "\nsplit: " << describe(split);
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < text.size(); ++i) every_byte.push_back(i);
  EXPECT_EQ(parse_in_chunks(text, every_byte, options), whole) << text;
}

constexpr std::string_view kQ = "<|\"|>";

std::string q(std::string_view s) {
  return std::string(kQ) + std::string(s) + std::string(kQ);
}

TEST(OutputParser, ThinkingThenContent) {
  const ParsedOutput out =
      parse_model_output("<|channel>thought\nLet me think: 2+2.<channel|>The answer is 4.");
  EXPECT_EQ(out.reasoning, "Let me think: 2+2.");
  EXPECT_EQ(out.content, "The answer is 4.");
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_TRUE(out.tool_call_errors.empty());
}

TEST(OutputParser, PlainContentAndEndOfTurnMarkers) {
  const ParsedOutput out = parse_model_output("Hello <b> a < b <= c <|notamarker> x<turn|>");
  EXPECT_EQ(out.content, "Hello <b> a < b <= c <|notamarker> x");
  EXPECT_EQ(parse_model_output("done<eos>").content, "done");
  EXPECT_EQ(parse_model_output("stray<channel|>close").content, "strayclose");
}

TEST(OutputParser, StartsInReasoningWhenThePromptOpenedTheChannel) {
  OutputParserOptions options;
  options.starts_in_reasoning = true;
  const ParsedOutput out = parse_model_output("thinking...<channel|>answer", options);
  EXPECT_EQ(out.reasoning, "thinking...");
  EXPECT_EQ(out.content, "answer");
}

TEST(OutputParser, EmptyThoughtChannel) {
  const ParsedOutput out = parse_model_output("<|channel>thought\n<channel|>Hi");
  EXPECT_EQ(out.reasoning, "");
  EXPECT_EQ(out.content, "Hi");
  EXPECT_EQ(parse_model_output("<|channel>thought<channel|>Hi").content, "Hi");
}

TEST(OutputParser, SeveralToolCalls) {
  const std::string text =
      "<|channel>thought\nNeed weather.<channel|>"
      "<|tool_call>call:get_weather{city:" +
      q("Paris") +
      ",days:3}<tool_call|>"
      "<|tool_call>call:get_time{zone:" +
      q("CET") + "}<tool_call|><|tool_response>";
  const ParsedOutput out = parse_model_output(text);
  EXPECT_EQ(out.reasoning, "Need weather.");
  EXPECT_EQ(out.content, "");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, json::parse(R"({"city": "Paris", "days": 3})"));
  EXPECT_EQ(out.tool_calls[1].name, "get_time");
  EXPECT_EQ(out.tool_calls[1].arguments, json::parse(R"({"zone": "CET"})"));
}

TEST(OutputParser, ToolCallValueSyntax) {
  const std::string body =
      "call:search{query:" + q("a {b}, [c]: \"d\"\nline2 'e' <tool_call|>? no") +
      ",filters:{year:2024,score:-1.5e-3,exact:true,draft:false,owner:None,tags:[" + q("x") + "," +
      q("y,z") + "],nested:{deep:[[1,2],[]],empty:{}}}," + q("quoted key") + ":7,bare:some words}";
  const ToolCall call = parse_tool_call(body);
  EXPECT_EQ(call.name, "search");
  const json expected = {{"query", "a {b}, [c]: \"d\"\nline2 'e' <tool_call|>? no"},
                         {"filters",
                          {{"year", 2024},
                           {"score", -1.5e-3},
                           {"exact", true},
                           {"draft", false},
                           {"owner", nullptr},
                           {"tags", {"x", "y,z"}},
                           {"nested",
                            {{"deep", json::array({json::array({1, 2}), json::array()})},
                             {"empty", json::object()}}}}},
                         {"quoted key", 7},
                         {"bare", "some words"}};
  EXPECT_EQ(call.arguments, expected) << call.arguments.dump();
  // Key order is kept as written.
  EXPECT_EQ(call.arguments.begin().key(), "query");
  EXPECT_EQ(parse_tool_call("call:noargs{}").arguments, json::object());
  EXPECT_EQ(parse_tool_call("f{a:null,b:none,c:1.0,d:-7}").arguments,
            json::parse(R"({"a": null, "b": null, "c": 1.0, "d": -7})"));
}

TEST(OutputParser, StringsMayContainTheCloseMarker) {
  // Inside <|"|> strings a literal <tool_call|> does not end the call.
  const std::string text =
      "<|tool_call>call:echo{text:" + q("x<tool_call|>y") + "}<tool_call|>after";
  const ParsedOutput out = parse_model_output(text);
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments["text"], "x<tool_call|>y");
  EXPECT_EQ(out.content, "after");
}

TEST(OutputParser, MalformedToolCallIsSurfacedAsContent) {
  OutputParser parser;
  std::vector<OutputEvent> events = parser.feed("before<|tool_call>call:f{a:}<tool_call|>after");
  for (OutputEvent& e : parser.finish()) events.push_back(std::move(e));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].text, "before");
  EXPECT_EQ(events[1].kind, OutputEventKind::InvalidToolCall);
  EXPECT_EQ(events[1].text, "<|tool_call>call:f{a:}<tool_call|>");
  EXPECT_NE(events[1].error.find("missing value"), std::string::npos) << events[1].error;
  EXPECT_EQ(events[2].text, "after");
  const ParsedOutput out = parse_model_output("x<|tool_call>call:f{a:1<tool_call|>y");
  EXPECT_EQ(out.content, "x<|tool_call>call:f{a:1<tool_call|>y");
  ASSERT_EQ(out.tool_call_errors.size(), 1u);
  EXPECT_TRUE(out.tool_calls.empty());
}

TEST(OutputParser, UnterminatedToolCallAtFinish) {
  const ParsedOutput out = parse_model_output("ok<|tool_call>call:f{a:" + q("unfinished"));
  EXPECT_EQ(out.content, "ok<|tool_call>call:f{a:" + q("unfinished"));
  ASSERT_EQ(out.tool_call_errors.size(), 1u);
  EXPECT_TRUE(out.tool_calls.empty());
  // A complete body closed by an end-of-turn marker instead of <tool_call|> is accepted.
  const ParsedOutput closed = parse_model_output("<|tool_call>call:f{a:1}<|tool_response>");
  ASSERT_EQ(closed.tool_calls.size(), 1u);
  EXPECT_EQ(closed.tool_calls[0].arguments, json::parse(R"({"a": 1})"));
  // Complete body but the text simply ends: still unterminated.
  EXPECT_EQ(parse_model_output("<|tool_call>call:f{a:1}").tool_call_errors.size(), 1u);
}

TEST(OutputParser, ToolCallErrorsSayWhatIsWrong) {
  const auto error_of = [](std::string_view body) {
    try {
      parse_tool_call(body);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error_of("call:f").find("expected '{'"), std::string::npos);
  EXPECT_NE(error_of("call:{a:1}").find("missing function name"), std::string::npos);
  EXPECT_NE(error_of("call:f{a:1").find("expected ',' or '}'"), std::string::npos);
  EXPECT_NE(error_of("call:f{a:1}}").find("unexpected text after"), std::string::npos);
  EXPECT_NE(error_of("call:f{a:" + q("x")).find("expected ',' or '}'"), std::string::npos);
  EXPECT_NE(error_of("call:f{a:" + std::string(kQ) + "x").find("unterminated"), std::string::npos);
  EXPECT_NE(error_of("call:f{:1}").find("empty object key"), std::string::npos);
  EXPECT_NE(error_of("call:f{a,b}").find("expected 'key:'"), std::string::npos);
  EXPECT_NE(error_of("call:f{a:[1,2}").find("expected ',' or ']'"), std::string::npos);
  EXPECT_NE(error_of("call:f{a:" + std::string(5000, '[')).find("nested too deeply"),
            std::string::npos);
}

TEST(OutputParser, NeverLeaksAPartialMarker) {
  OutputParser parser;
  std::vector<OutputEvent> events = parser.feed("Hello <|chan");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, OutputEventKind::Content);
  EXPECT_EQ(events[0].text, "Hello ");
  events = parser.feed("nel>thou");
  EXPECT_TRUE(events.empty());
  events = parser.feed("ght\nhmm <chan");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, OutputEventKind::Reasoning);
  EXPECT_EQ(events[0].text, "hmm ");
  events = parser.feed("nel| not a marker");  // "<channel| " is not "<channel|>"
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "<channel| not a marker");
  events = parser.feed("<");
  EXPECT_TRUE(events.empty());
  events = parser.finish();  // a lone '<' at the end is text
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "<");
}

TEST(OutputParser, DeltasEndOnCodePointBoundaries) {
  const std::string text = "Zażółć 東京 🙂<|channel>thought\nł🙂<channel|>é";
  OutputParser parser;
  std::string content;
  for (char c : text) {
    for (const OutputEvent& e : parser.feed(std::string_view(&c, 1))) {
      // Every delta is whole code points: it decodes without an incomplete tail.
      const auto last = static_cast<uint8_t>(e.text.back());
      EXPECT_TRUE(last < 0x80 || (last & 0xC0) == 0x80) << "delta ends in a lead byte";
      if (e.kind == OutputEventKind::Content) content += e.text;
    }
  }
  for (const OutputEvent& e : parser.finish())
    if (e.kind == OutputEventKind::Content) content += e.text;
  EXPECT_EQ(content, "Zażółć 東京 🙂é");
}

TEST(OutputParser, EveryByteSplitGivesTheSameEvents) {
  const std::vector<std::string> outputs = {
      "<|channel>thought\nI will call a tool {with braces}.<channel|>Sure."
      "<|tool_call>call:search{q:" +
          q("a, b} {c\n\"d\"") +
          ",n:[1,{x:2}],ok:true}<tool_call|>"
          "<|tool_call>call:noop{}<tool_call|>Done 🙂<turn|>",
      "Plain < text <| with <|chan almost markers <tool_call| and <|\"|> delimiters.",
      "<|tool_call>call:bad{a:}<tool_call|>tail<|tool_call>call:open{s:" + q("never closed"),
      "<|channel>thought\nunterminated reasoning <chan",
      "résumé 東京<|channel>thought\n🙂🙂<channel|>ünïcödé<eos>",
  };
  for (const std::string& text : outputs) expect_split_invariant(text);
  OutputParserOptions in_reasoning;
  in_reasoning.starts_in_reasoning = true;
  expect_split_invariant("still thinking<channel|>answer<|tool_call>call:f{a:1}<tool_call|>",
                         in_reasoning);
}

// Random mixtures of marker fragments, UTF-8 and syntax characters: no crash, and splitting
// never changes the result.
TEST(OutputParser, RandomMarkerSoupIsSplitInvariant) {
  const std::vector<std::string> pieces = {"<|channel>",
                                           "thought\n",
                                           "<channel|>",
                                           "<|tool_call>",
                                           "call:f{",
                                           "a:",
                                           "<|\"|>",
                                           "}",
                                           "{",
                                           ",",
                                           "[",
                                           "]",
                                           "<tool_call|>",
                                           "<",
                                           "|",
                                           "x",
                                           "é",
                                           "\xF0\x9F\x99\x82",
                                           "\n",
                                           "<turn|>",
                                           "<|chan",
                                           "nel>",
                                           "\xE6",
                                           "1.5",
                                           "None",
                                           "<|tool_response>"};
  std::mt19937 rng(12345);
  std::uniform_int_distribution<size_t> pick(0, pieces.size() - 1);
  std::uniform_int_distribution<int> length(1, 24);
  for (int round = 0; round < 150; ++round) {
    std::string text;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) text += pieces[pick(rng)];
    expect_split_invariant(text);
    if (HasFatalFailure()) return;
  }
}

TEST(OutputParser, FeedAfterFinishIsAnError) {
  OutputParser parser;
  parser.finish();
  EXPECT_THROW(parser.feed("x"), Error);
  EXPECT_TRUE(parser.finish().empty());
}

}  // namespace
}  // namespace g4
