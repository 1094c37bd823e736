// The public C++ API, used the way a library user would: only <gemma4/gemma4.h>.
#include <gemma4/gemma4.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "test_util.h"

namespace {

class PublicApiTest : public testing::Test {
 protected:
  void SetUp() override {
    G4_REQUIRE_FIXTURE("gemma4-tiny/mmproj-f32.gguf");
    dir_ = g4::test::fixtures_dir() / "gemma4-tiny";
    gemma4::EngineOptions options;
    options.model = (dir_ / "text-f32.gguf").string();
    options.mmproj = (dir_ / "mmproj-f32.gguf").string();
    options.threads = 2;
    options.context = 512;
    engine_ = gemma4::Engine::load(options);
  }
  std::filesystem::path dir_;
  std::unique_ptr<gemma4::Engine> engine_;
};

TEST_F(PublicApiTest, GenerateStreamsWhatItReturnsAndMatchesTheCli) {
  gemma4::Request request;
  request.prompt = "Hello there";
  request.max_tokens = 8;
  request.sampling.temperature = 0.0f;
  std::string streamed;
  const gemma4::Reply reply = engine_->generate(request, [&](const gemma4::Delta& d) {
    if (!d.reasoning) streamed += d.text;
    return true;
  });
  EXPECT_EQ(streamed, reply.content);
  EXPECT_GT(reply.prompt_tokens, 5);
  EXPECT_EQ(reply.completion_tokens, 8);
  EXPECT_EQ(reply.finish_reason, "length");
  const auto cli = g4::test::run_cli("run -m " + (dir_ / "text-f32.gguf").string() +
                                     " -p \"Hello there\" -n 8 --temp 0 --json -c 512");
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(nlohmann::json::parse(cli.out)["content"], reply.content);

  // Stopping from the callback.
  int calls = 0;
  const gemma4::Reply stopped = engine_->generate(request, [&](const gemma4::Delta&) { return ++calls < 2; });
  EXPECT_EQ(stopped.finish_reason, "cancelled");
}

TEST_F(PublicApiTest, ChatKeepsItsContextAndTakesMedia) {
  gemma4::Sampling greedy;
  greedy.temperature = 0.0f;
  auto chat = engine_->start_chat("Be brief.", false, greedy, 6);
  const gemma4::Reply first = chat->send("Hello there");
  const gemma4::Reply second = chat->send("And then?");
  EXPECT_LT(second.prompt_tokens, first.prompt_tokens);  // only the new turn is evaluated
  const gemma4::Reply with_audio =
      chat->send("What do you hear?", {{gemma4::MediaKind::Audio, (dir_ / "audio.wav").string()}});
  EXPECT_GT(with_audio.prompt_tokens, 51);  // the 51 audio soft tokens plus the turn's text
  chat->reset();
  EXPECT_GT(chat->send("Hello there").prompt_tokens, second.prompt_tokens);
}

TEST_F(PublicApiTest, TokenizeAndErrors) {
  const std::vector<int32_t> ids = engine_->tokenize("Hello world", true);
  EXPECT_EQ(ids.front(), 2);
  EXPECT_EQ(engine_->detokenize({ids.begin() + 1, ids.end()}), "Hello world");
  EXPECT_EQ(engine_->vocab_size(), 1530);

  gemma4::Request too_long;
  too_long.prompt = std::string(3000, 'x');
  try {
    engine_->generate(too_long);
    FAIL() << "expected an error";
  } catch (const gemma4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  gemma4::EngineOptions missing;
  missing.model = "/nonexistent/model.gguf";
  EXPECT_THROW(gemma4::Engine::load(missing), gemma4::Error);
  gemma4::Request bad_media;
  bad_media.prompt = "Look";
  bad_media.media.push_back({gemma4::MediaKind::Image, "/nonexistent/x.png"});
  EXPECT_THROW(engine_->generate(bad_media), gemma4::Error);
}

}  // namespace
