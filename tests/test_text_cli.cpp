// Text in and out end to end: `gemma4 tokenize`, `gemma4 chat-template`, `gemma4 run -p` and the
// multi-turn `gemma4 chat` / ChatSession with KV reuse.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "cli_runner.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/chat.h"
#include "runtime/chat_session.h"
#include "test_util.h"

namespace g4 {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using test::run_cli;

std::string tiny_model() { return (test::fixtures_dir() / "gemma4-tiny" / "text-f32.gguf").string(); }

TEST(TextCliTest, TokenizeJsonlMatchesTheReferenceIds) {
  G4_REQUIRE_FIXTURE("tokenizer/tokenizer.json");
  const auto dir = test::fixtures_dir() / "tokenizer";
  std::ifstream corpus(dir / "corpus.jsonl"), ids(dir / "ids.jsonl");
  std::string input, expected, line;
  for (int i = 0; i < 300 && std::getline(corpus, line); ++i) input += line + "\n";
  const auto r = run_cli("tokenize --tokenizer " + (dir / "tokenizer.json").string() + " --jsonl", input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream got(r.out);
  std::string got_line;
  int n = 0, compared = 0;
  for (std::istringstream in(input); std::getline(in, line); ++n) {
    std::getline(ids, expected);
    ASSERT_TRUE(bool(std::getline(got, got_line))) << "missing output line " << n;
    EXPECT_EQ(json::parse(got_line), json::parse(expected)) << "line " << n << ": " << line;
    ++compared;
  }
  EXPECT_EQ(compared, 300);
}

TEST(TextCliTest, ChatTemplateRendersEveryReferenceCase) {
  G4_REQUIRE_FIXTURE("chat-template/cases.json");
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  test::TempDir dir;
  const auto cases_path = test::fixtures_dir() / "chat-template" / "cases.json";
  std::ifstream in(cases_path);
  const ordered_json cases = ordered_json::parse(in);
  ASSERT_EQ(cases.size(), 20u);
  for (const auto& c : cases) {
    const auto input = dir / "case.json";
    std::ofstream(input) << c["input"].dump();
    const auto from_file = run_cli("chat-template --template " +
                                   (test::fixtures_dir() / "chat-template" / "gemma4-it.jinja").string() +
                                   " --input " + input.string());
    ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
    EXPECT_EQ(from_file.out, c["rendered"].get<std::string>()) << c["name"];
    const auto from_model = run_cli("chat-template -m " + tiny_model() + " --input " + input.string());
    EXPECT_EQ(from_model.out, c["rendered"].get<std::string>()) << c["name"];
  }
  const auto bad = run_cli("chat-template -m " + tiny_model() + " --input -", "{not json");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("not valid JSON"), std::string::npos) << bad.err;
}

TEST(TextCliTest, RunWithAPromptUsesTheChatTemplate) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  const auto r = run_cli("run -m " + tiny_model() + " -p \"Hello there\" -n 6 --temp 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  // The prompt is the template's rendering, tokenized with one <bos>.
  const auto model = Gemma4Model::load(tiny_model());
  const std::string text = render_chat_prompt(
      *model, {{"messages", {{{"role", "user"}, {"content", "Hello there"}}}}, {"enable_thinking", false}});
  EXPECT_EQ(text.rfind("<bos><|turn>user\nHello there<turn|>\n<|turn>model\n", 0), 0u) << text;
  const auto prompt = tokenize_prompt(model->require_tokenizer(), text, true);
  EXPECT_EQ(j["prompt_tokens"], prompt.size());
  EXPECT_EQ(std::count(prompt.begin(), prompt.end(), model->tokenizer->bos_id()), 1);
  // text is the decoded ids; content is what remains after the parser.
  EXPECT_EQ(j["text"], model->tokenizer->decode(j["ids"].get<std::vector<int32_t>>()));
  EXPECT_TRUE(j.contains("content"));

  const auto raw = run_cli("run -m " + tiny_model() + " -p \"Hello\" --raw -n 3 --temp 0 --json");
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(json::parse(raw.out)["prompt_tokens"], 1 + model->tokenizer->encode("Hello", false, true).size());
  const auto no_prompt = run_cli("run -m " + tiny_model());
  EXPECT_EQ(no_prompt.exit_code, 1);
  EXPECT_NE(no_prompt.err.find("-p TEXT"), std::string::npos);
}

// A conversation held in the KV cache gives exactly what evaluating its whole token sequence at
// once gives, and each turn evaluates only its own tokens.
TEST(ChatSessionTest, SecondTurnCostsOnlyItsOwnTokensAndMatchesAFreshRun) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  const auto model = Gemma4Model::load(tiny_model());
  const Tokenizer& tok = *model->tokenizer;
  ThreadPool pool(2);
  ChatSession session(*model, pool, KvCacheConfig{512}, MatmulMode::kPrecise);
  SamplingParams greedy;
  greedy.temperature = 0;
  Sampler sampler(greedy, model->suppressed_tokens);
  const ChatTurn first = session.send("Hello there", sampler, 6);
  EXPECT_FALSE(first.reprocessed);
  const int64_t after_first = session.cache().n_past();
  EXPECT_EQ(after_first, first.prompt_tokens + int64_t(first.generation.tokens.size()) - 1);

  const ChatTurn second = session.send("And then?", sampler, 6);
  EXPECT_FALSE(second.reprocessed);
  // The new tokens: the closing of the model's turn, the user turn and the generation prompt.
  const std::vector<TokenId> expected_delta =
      tokenize_prompt(tok, "<turn|>\n<|turn>user\nAnd then?<turn|>\n<|turn>model\n<|channel>thought\n<channel|>", false);
  EXPECT_EQ(second.prompt_tokens, int64_t(expected_delta.size()));
  EXPECT_LT(second.prompt_tokens, first.prompt_tokens + 10);

  // Fresh run over the whole sequence: turn 1 prompt + reply + turn 2 delta.
  std::vector<TokenId> all = tokenize_prompt(
      tok, render_chat_prompt(*model, {{"messages", {{{"role", "user"}, {"content", "Hello there"}}}},
                                       {"enable_thinking", false}}),
      true);
  all.insert(all.end(), first.generation.tokens.begin(), first.generation.tokens.end());
  all.insert(all.end(), expected_delta.begin(), expected_delta.end());
  KvCache cache(model->hp, 512);
  ForwardPass forward(*model, pool, MatmulMode::kPrecise);
  Sampler sampler2(greedy, model->suppressed_tokens);
  const GenerationResult fresh = generate(*model, forward, cache, all, sampler2, 6);
  EXPECT_EQ(fresh.tokens, second.generation.tokens);

  // Turning thinking on changes the start of the prompt: the next turn re-reads everything.
  session.set_thinking(true);
  const ChatTurn third = session.send("Think!", sampler, 4);
  EXPECT_TRUE(third.reprocessed);
  session.reset();
  EXPECT_EQ(session.cache().n_past(), 0);
  EXPECT_EQ(session.messages().size(), 0u);
}

TEST(TextCliTest, ChatReplScriptedThroughStdin) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  const auto r = run_cli("chat -m " + tiny_model() + " -n 5 --temp 0 -v",
                         "Hello there\nAnd then?\n/think on\nWhy?\n/reset\nAgain\n/bogus\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  std::vector<std::string> turns;
  const std::regex turn_re(R"(\[turn (\d+): (\d+) prompt tokens( \(re-read\))?)");
  for (auto it = std::sregex_iterator(r.err.begin(), r.err.end(), turn_re); it != std::sregex_iterator(); ++it)
    turns.push_back((*it)[0]);
  ASSERT_EQ(turns.size(), 4u) << r.err;
  EXPECT_EQ(turns[1].find("re-read"), std::string::npos);  // turn 2 reuses the cache
  EXPECT_NE(turns[2].find("re-read"), std::string::npos);  // thinking switched: re-read
  EXPECT_EQ(turns[3].find("re-read"), std::string::npos);  // after /reset: a fresh start
  EXPECT_NE(r.out.find("(thinking on)"), std::string::npos);
  EXPECT_NE(r.out.find("(conversation cleared)"), std::string::npos);
  EXPECT_NE(r.out.find("unknown command /bogus"), std::string::npos);
}

}  // namespace
}  // namespace g4
