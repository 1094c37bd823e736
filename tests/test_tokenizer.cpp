// Tokenizer tests: hand-built vocabularies (algorithm details, errors), the Gemma 3
// tokenizer.json against Hugging Face's ids (fixtures/tokenizer), and the gemma4-tiny GGUF
// vocabulary against llama.cpp (fixtures/gemma4-tiny/tokens.json, TOLERANCES.md row 8).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/gguf.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace g4 {
namespace {

using nlohmann::json;
using Ids = std::vector<TokenId>;

const std::string kSpace = "\xE2\x96\x81";  // ▁

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out += digits[uint8_t(c) >> 4];
    out += digits[uint8_t(c) & 15];
  }
  return out;
}

// Streams `ids` through a StreamingDecoder and returns the concatenated output; checks on the
// way that nothing emitted ends inside a UTF-8 sequence.
std::string stream_decode(const Tokenizer& tokenizer, const Ids& ids, bool render_special) {
  StreamingDecoder decoder(tokenizer, render_special);
  std::string text;
  for (TokenId id : ids) {
    const std::string part = decoder.push(id);
    EXPECT_EQ(sanitize_utf8(part), part) << "emitted ill-formed UTF-8: " << hex(part);
    text += part;
  }
  text += decoder.flush();
  EXPECT_EQ(decoder.pending_bytes(), 0u);
  return text;
}

// ------------------------------------------------------------------------------------------
// A small hand-built vocabulary.

// ids: 0 <pad> 1 <eos> 2 <bos> 3 <unk> 4 <|turn> 5 <turn|> 6 <|"|> (USER_DEFINED)
//      7 <|tool_response> (USER_DEFINED, becomes CONTROL as an end-of-generation token)
//      8 \n  9 \n\n  10..265 <0x00>..<0xFF>, then the normal tokens below.
TokenizerVocab small_vocab() {
  TokenizerVocab v;
  v.source = "small-vocab";
  const auto add = [&](const std::string& text, TokenType type) {
    v.tokens.push_back(text);
    v.types.push_back(type);
  };
  add("<pad>", TokenType::Control);
  add("<eos>", TokenType::Control);
  add("<bos>", TokenType::Control);
  add("<unk>", TokenType::Unknown);
  add("<|turn>", TokenType::Control);
  add("<turn|>", TokenType::Control);
  add("<|\"|>", TokenType::UserDefined);
  add("<|tool_response>", TokenType::UserDefined);
  add("\n", TokenType::Normal);
  add("\n\n", TokenType::Normal);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, TokenType::Byte);
  }
  for (const char* text : {"a", "b", "c", "d", "<", "|", ">", "t", "u", "r", "n", "x"})
    add(text, TokenType::Normal);
  add(kSpace, TokenType::Normal);
  for (const std::string& text :
       {std::string("ab"), std::string("bc"), std::string("abc"), kSpace + "a", kSpace + kSpace,
        std::string("cd"), std::string("\n\n\n\n")})
    add(text, TokenType::Normal);
  // Rank order matters: "b c" outranks "a b", so "abc" -> a + bc unless "a bc" existed.
  v.merges = {"b c", "a b", "ab c", kSpace + " a", kSpace + " " + kSpace, "c d", "\n\n \n\n"};
  v.bos_id = 2;
  v.eos_id = 1;
  v.unk_id = 3;
  v.pad_id = 0;
  return v;
}

class TokenizerSmallVocab : public ::testing::Test {
 protected:
  Tokenizer tok{small_vocab()};
  TokenId id(const std::string& text) const {
    const std::optional<TokenId> found = tok.token_id(text);
    EXPECT_TRUE(found.has_value()) << "no token '" << text << "'";
    return found.value_or(kNoToken);
  }
  TokenId byte(int b) const { return 10 + b; }
};

TEST_F(TokenizerSmallVocab, MergesLowestRankFirst) {
  // "b c" (rank 0) beats "a b" (rank 1): a|bc, and there is no "a bc" merge.
  EXPECT_EQ(tok.encode("abc", false, true), (Ids{id("a"), id("bc")}));
  EXPECT_EQ(tok.encode("ab", false, true), (Ids{id("ab")}));
  // "abd": b c impossible, a b -> ab, then d alone.
  EXPECT_EQ(tok.encode("abd", false, true), (Ids{id("ab"), id("d")}));
}

TEST_F(TokenizerSmallVocab, EqualRankMergesLeftmostFirst) {
  // "▁▁▁": the pair (0,1) and (1,2) have the same rank; the left one merges.
  EXPECT_EQ(tok.encode("   ", false, true), (Ids{id(kSpace + kSpace), id(kSpace)}));
  EXPECT_EQ(tok.encode("    ", false, true), (Ids{id(kSpace + kSpace), id(kSpace + kSpace)}));
}

TEST_F(TokenizerSmallVocab, SpacesBecomeSpaceMarker) {
  EXPECT_EQ(tok.encode(" a b", false, true), (Ids{id(kSpace + "a"), id(kSpace), id("b")}));
  // A literal ▁ in the input is the same symbol.
  EXPECT_EQ(tok.encode(kSpace + "a", false, true), (Ids{id(kSpace + "a")}));
}

TEST_F(TokenizerSmallVocab, ByteFallbackForUnknownCharacters) {
  // é = C3 A9 is not a token; tab neither.
  EXPECT_EQ(tok.encode("a\xC3\xA9\t", false, true),
            (Ids{id("a"), byte(0xC3), byte(0xA9), byte(0x09)}));
  // Ill-formed UTF-8 falls back byte by byte, nothing is dropped.
  EXPECT_EQ(tok.encode("\xFF"
                       "a\xC3",
                       false, true),
            (Ids{byte(0xFF), id("a"), byte(0xC3)}));
  // A known character never merges across an unknown one.
  EXPECT_EQ(tok.encode("a\xC3\xA9"
                       "b",
                       false, true),
            (Ids{id("a"), byte(0xC3), byte(0xA9), id("b")}));
}

TEST_F(TokenizerSmallVocab, UnknownWithoutByteTokens) {
  TokenizerVocab v = small_vocab();
  for (int b = 0; b < 256; ++b) v.types[10 + b] = TokenType::Normal;  // no BYTE tokens
  Tokenizer no_bytes(std::move(v));
  // Consecutive unknown characters share one <unk>.
  EXPECT_EQ(no_bytes.encode("\xC3\xA9\xC3\xA9"
                            "a\t",
                            false, true),
            (Ids{3, *no_bytes.token_id("a"), 3}));
}

TEST_F(TokenizerSmallVocab, NewlineRuns) {
  EXPECT_EQ(tok.encode("a\nb", false, true), (Ids{id("a"), id("\n"), id("b")}));
  EXPECT_EQ(tok.encode("\n\n", false, true), (Ids{id("\n\n")}));
  // "\n\n\n" is not a token: BPE over the run, and no merge applies to single newlines.
  EXPECT_EQ(tok.encode("\n\n\n", false, true), (Ids{id("\n"), id("\n"), id("\n")}));
  // "\n\n\n\n" is a token: emitted whole although no merge chain builds it from "\n".
  EXPECT_EQ(tok.encode("a\n\n\n\nb", false, true), (Ids{id("a"), id("\n\n\n\n"), id("b")}));
  // Merges never cross a newline boundary ("b c" would apply to "bc").
  EXPECT_EQ(tok.encode("b\nc", false, true), (Ids{id("b"), id("\n"), id("c")}));
}

TEST_F(TokenizerSmallVocab, AddBos) {
  EXPECT_EQ(tok.encode("a", true, true), (Ids{2, id("a")}));
  EXPECT_EQ(tok.encode("", true, true), (Ids{2}));
  EXPECT_EQ(tok.encode("", false, true), (Ids{}));
}

TEST_F(TokenizerSmallVocab, SpecialTokensWholeWhenParsing) {
  EXPECT_EQ(tok.encode("<|turn>ab<turn|>", false, true), (Ids{4, id("ab"), 5}));
  EXPECT_EQ(tok.encode("<bos><bos>", false, true), (Ids{2, 2}));
  // A near miss is text.
  EXPECT_EQ(tok.encode("<|tur", false, true), (Ids{id("<"), id("|"), id("t"), id("u"), id("r")}));
  // Not parsed: CONTROL tokens are text, USER_DEFINED ones still whole.
  EXPECT_EQ(tok.encode("<|turn><|\"|>", false, false),
            (Ids{id("<"), id("|"), id("t"), id("u"), id("r"), id("n"), id(">"), 6}));
  // <|tool_response> is USER_DEFINED in the vocab but an end-of-generation token: CONTROL.
  EXPECT_EQ(tok.token_type(7), TokenType::Control);
  EXPECT_EQ(tok.encode("<|tool_response>", false, true), (Ids{7}));
  EXPECT_NE(tok.encode("<|tool_response>", false, false), (Ids{7}));
}

TEST_F(TokenizerSmallVocab, SpecialTokensLongestMatch) {
  TokenizerVocab v = small_vocab();
  v.tokens.push_back("<|turn>x");
  v.types.push_back(TokenType::Control);
  Tokenizer longer(std::move(v));
  const auto longest = static_cast<TokenId>(longer.n_vocab() - 1);
  EXPECT_EQ(longer.encode("<|turn>x<|turn>a", false, true),
            (Ids{longest, 4, *longer.token_id("a")}));
  // Without parse_special neither CONTROL token is a candidate: all text.
  EXPECT_EQ(longer.encode("<|turn>x", false, false).size(), 8u);
}

TEST_F(TokenizerSmallVocab, Lookups) {
  EXPECT_EQ(tok.n_vocab(), 10u + 256u + 13u + 7u);
  EXPECT_EQ(tok.token_id("<|turn>"), 4);
  EXPECT_FALSE(tok.token_id("<|nope>").has_value());
  EXPECT_TRUE(tok.is_control(4));
  EXPECT_FALSE(tok.is_control(6));
  EXPECT_FALSE(tok.is_control(-1));
  EXPECT_FALSE(tok.is_control(100000));
  EXPECT_TRUE(tok.is_byte(byte(0x41)));
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.gemma4_specials().turn_start, 4);
  EXPECT_EQ(tok.gemma4_specials().turn_end, 5);
  EXPECT_EQ(tok.gemma4_specials().string_quote, 6);
  EXPECT_EQ(tok.gemma4_specials().image_start, kNoToken);
  EXPECT_EQ(tok.end_of_generation_ids(), (Ids{1, 5, 7}));
  EXPECT_TRUE(tok.is_end_of_generation(5));
  EXPECT_FALSE(tok.is_end_of_generation(4));
}

TEST_F(TokenizerSmallVocab, Decode) {
  const Ids ids{2, id(kSpace + "a"), 4, byte(0xC3), byte(0xA9), 6, 3, id(kSpace + kSpace)};
  EXPECT_EQ(tok.decode(ids), "<bos> a<|turn>\xC3\xA9<|\"|><unk>  ");
  EXPECT_EQ(tok.decode(ids, {.render_special = false}), " a\xC3\xA9<|\"|>  ");
  EXPECT_EQ(tok.token_to_piece(4, true), "<|turn>");
  EXPECT_EQ(tok.token_to_piece(4, false), "");
  EXPECT_EQ(tok.token_to_piece(6, false), "<|\"|>");  // USER_DEFINED: always text
  EXPECT_EQ(tok.token_to_piece(byte(0x41), false), "A");
  EXPECT_EQ(tok.token_to_piece(byte(0x00), false), std::string(1, '\0'));
  EXPECT_THROW(tok.token_to_piece(-1, true), Error);
  EXPECT_THROW(tok.decode(Ids{static_cast<TokenId>(tok.n_vocab())}), Error);
}

TEST_F(TokenizerSmallVocab, RoundTrip) {
  for (const std::string text :
       {"", "abc abd", "  a\n\n\nb \t", "<|turn>x<turn|>\n", "\xF0\x9F\x98\x80 \xC3\xA9!"}) {
    EXPECT_EQ(tok.decode(tok.encode(text, false, true)), text);
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text);
  }
}

TEST_F(TokenizerSmallVocab, StreamingHoldsBackSplitCharacters) {
  StreamingDecoder decoder(tok);
  // 😀 = F0 9F 98 80 over four byte tokens.
  EXPECT_EQ(decoder.push(id("a")), "a");
  EXPECT_EQ(decoder.push(byte(0xF0)), "");
  EXPECT_EQ(decoder.push(byte(0x9F)), "");
  EXPECT_EQ(decoder.push(byte(0x98)), "");
  EXPECT_EQ(decoder.pending_bytes(), 3u);
  EXPECT_EQ(decoder.push(byte(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(decoder.push(id(kSpace + "a")), " a");
  EXPECT_EQ(decoder.flush(), "");
}

TEST_F(TokenizerSmallVocab, StreamingInvalidUtf8) {
  StreamingDecoder decoder(tok);
  EXPECT_EQ(decoder.push(byte(0xFF)), "\xEF\xBF\xBD");  // never valid
  EXPECT_EQ(decoder.push(byte(0xC3)), "");              // could still become é
  EXPECT_EQ(decoder.push(id("a")),
            "\xEF\xBF\xBD"
            "a");                                       // ...but did not
  EXPECT_EQ(decoder.push(byte(0x80)), "\xEF\xBF\xBD");  // stray continuation byte
  EXPECT_EQ(decoder.push(byte(0xE2)), "");
  EXPECT_EQ(decoder.push(byte(0x82)), "");
  EXPECT_EQ(decoder.flush(), "\xEF\xBF\xBD");  // truncated at the end
  EXPECT_EQ(decoder.push(byte(0xED)), "");
  EXPECT_EQ(decoder.push(byte(0xA0)), "\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: ED, A0 apart
  EXPECT_EQ(decoder.push(4), "<|turn>");
  StreamingDecoder quiet(tok, /*render_special=*/false);
  EXPECT_EQ(quiet.push(4), "");
  EXPECT_EQ(quiet.push(6), "<|\"|>");
}

TEST_F(TokenizerSmallVocab, StreamingEqualsSanitizedDecodeAtEveryToken) {
  const Ids ids{id("a"),    byte(0xF0), byte(0x9F), byte(0x98),       byte(0x80),
                byte(0xC3), id("b"),    byte(0xE2), byte(0x82),       byte(0xAC),
                byte(0xBF), 4,          byte(0xF4), byte(0x90),       byte(0xC3),
                byte(0xA9), byte(0xE0), byte(0x80), id(kSpace + "a"), byte(0xC3)};
  for (bool special : {true, false}) {
    const std::string full = tok.decode(ids, {.render_special = special});
    EXPECT_EQ(stream_decode(tok, ids, special), sanitize_utf8(full));
    // After every token, what was emitted plus what a flush would add is exactly the
    // sanitized decode of the ids so far: nothing is lost, duplicated or emitted early.
    StreamingDecoder decoder(tok, special);
    std::string emitted;
    for (size_t i = 0; i < ids.size(); ++i) {
      emitted += decoder.push(ids[i]);
      StreamingDecoder copy = decoder;
      const Ids prefix(ids.begin(), ids.begin() + i + 1);
      EXPECT_EQ(emitted + copy.flush(),
                sanitize_utf8(tok.decode(prefix, {.render_special = special})))
          << "after token " << i;
    }
  }
}

// ------------------------------------------------------------------------------------------
// Vocabulary validation

void expect_error(const std::function<void()>& body, const std::string& needle) {
  try {
    body();
    ADD_FAILURE() << "no g4::Error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TokenizerVocabErrors, BadVocabularies) {
  auto build = [](auto change) {
    return [change] {
      TokenizerVocab v = small_vocab();
      change(v);
      Tokenizer t(std::move(v));
    };
  };
  expect_error(build([](TokenizerVocab& v) { v.tokens.clear(), v.types.clear(); }), "empty");
  expect_error(build([](TokenizerVocab& v) { v.types.pop_back(); }), "token types for");
  expect_error(build([](TokenizerVocab& v) { v.scores = {1.0f}; }), "scores");
  expect_error(build([](TokenizerVocab& v) { v.bos_id = 100000; }), "BOS token id 100000");
  expect_error(build([](TokenizerVocab& v) { v.eos_id = -7; }), "EOS");
  expect_error(build([](TokenizerVocab& v) { v.merges.push_back("a zz"); }),
               "merge #7 'a zz' names unknown token 'zz'");
  expect_error(build([](TokenizerVocab& v) { v.merges.push_back("qq a"); }), "unknown token 'qq'");
  expect_error(build([](TokenizerVocab& v) { v.merges.push_back("a d"); }),
               "produces 'ad', which is not in the vocabulary");
  expect_error(build([](TokenizerVocab& v) { v.merges.push_back("abc"); }), "separated by a space");
  expect_error(build([](TokenizerVocab& v) { v.merges.push_back("a "); }), "separated by a space");
  expect_error(build([](TokenizerVocab& v) { v.tokens[10] = "<0xZZ>"; }), "expected <0xXX>");
  expect_error(build([](TokenizerVocab& v) { v.types[3] = static_cast<TokenType>(9); }),
               "invalid type");
  // The vocab source is named in errors.
  expect_error(build([](TokenizerVocab& v) { v.merges.push_back("a zz"); }), "small-vocab");
}

// ------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json: small inline files

std::string tiny_hf_json(const std::string& model_extra = "", const std::string& added = "") {
  return R"({"version": "1.0", "added_tokens": [
      {"id": 0, "content": "<pad>", "special": true},
      {"id": 1, "content": "<eos>", "special": true},
      {"id": 2, "content": "<bos>", "special": true},
      {"id": 3, "content": "<unk>", "special": true},
      {"id": 9, "content": "<b>", "special": false})" +
         added + R"(],
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A"}}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
      "vocab": {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "a": 4, "b": 5, "ab": 6,
                "\u2581": 7, "\u2581ab": 8, "<b>": 9, "<0x41>": 10},
      "merges": )" +
         (model_extra.empty() ? std::string(R"([["a", "b"], "\u2581 ab"])") : model_extra) + "}}";
}

TEST(TokenizerHfJson, SmallFile) {
  Tokenizer tok(Tokenizer::vocab_from_hf_json_text(tiny_hf_json(), "tiny.json"));
  EXPECT_EQ(tok.n_vocab(), 11u);
  EXPECT_EQ(tok.n_merges(), 2u);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.token_type(3), TokenType::Unknown);
  EXPECT_EQ(tok.token_type(2), TokenType::Control);
  EXPECT_EQ(tok.token_type(9), TokenType::UserDefined);
  EXPECT_EQ(tok.token_type(10), TokenType::Byte);
  EXPECT_EQ(tok.encode("ab ab<b>", true, true), (Ids{2, 6, 8, 9}));
  // Not parsed: '<' 'o' 's' '>' are unknown and have no byte tokens -> fused <unk>s.
  EXPECT_EQ(tok.encode("A<bos>", false, false), (Ids{10, 3, 5, 3}));
}

TEST(TokenizerHfJson, MalformedFiles) {
  const auto load = [](const std::string& text) {
    return [text] { Tokenizer t(Tokenizer::vocab_from_hf_json_text(text, "bad.json")); };
  };
  expect_error(load("{not json"), "bad.json: not valid JSON");
  expect_error(load("[1, 2]"), "top level is not a JSON object");
  expect_error(load(R"({"added_tokens": []})"), "has no \"model\"");
  expect_error(load(R"({"model": {"type": "Unigram", "vocab": {}, "merges": []}})"),
               "only \"BPE\"");
  expect_error(load(R"({"model": {"type": "BPE", "merges": []}})"), "model has no \"vocab\"");
  expect_error(load(R"({"model": {"type": "BPE", "vocab": {"a": 0}}})"), "no \"merges\"");
  expect_error(load(R"({"model": {"vocab": {"a": 0, "b": 2}, "merges": []}})"),
               "no token has id 1");
  expect_error(load(R"({"model": {"vocab": {"a": 0, "b": 0}, "merges": []}})"),
               "gives id 0 to both");
  expect_error(load(R"({"model": {"vocab": {"a": "zero"}, "merges": []}})"), "expected an integer");
  expect_error(load(R"({"model": {"vocab": {"a": -1}, "merges": []}})"), "expected an integer");
  expect_error(load(R"({"model": {"vocab": {"a": 99999999999}, "merges": []}})"),
               "expected an integer");
  expect_error(load(R"({"model": {"vocab": {"a": 0}, "merges": [5]}})"), "model.merges[0]");
  expect_error(load(tiny_hf_json(R"([["a", "q"]])")), "names unknown token 'q'");
  expect_error(load(tiny_hf_json(R"([["b", "a"]])")), "produces 'ba'");
  expect_error(load(tiny_hf_json("", R"(, {"id": 4, "content": "zz"})")), "reuses id 4");
  expect_error(load(tiny_hf_json("", R"(, {"content": "zz"})")), "has no \"id\"");
  expect_error(load(tiny_hf_json("", R"(, {"id": 11})")), "has no \"content\"");
  expect_error(load(tiny_hf_json("", R"(, {"id": 11, "content": 5})")), "content is not a string");
  expect_error(load(R"({"model": {"vocab": {"a": 0}, "merges": [], "byte_fallback": "yes"}})"),
               "bad.json: unexpected tokenizer.json content");
  expect_error([] { Tokenizer::from_hf_json("/nonexistent/tokenizer.json"); }, "cannot open");
}

// ------------------------------------------------------------------------------------------
// clean_spaces (llama.cpp detokenizer), UTF-8 helpers

TEST(TokenizerCleanSpaces, LlamaCppPasses) {
  EXPECT_EQ(clean_spaces_like_llama("Wait . What , really ! Why ? (x)"),
            "Wait. What, really! Why? (x)");
  EXPECT_EQ(clean_spaces_like_llama(" ."), ".");
  EXPECT_EQ(clean_spaces_like_llama("a  ."), "a .");
  EXPECT_EQ(clean_spaces_like_llama("rock ' n"), "rock'n");
  EXPECT_EQ(clean_spaces_like_llama("a ' ' b"), "a'' b");  // the space after a group is used up
  EXPECT_EQ(clean_spaces_like_llama("it 's I 'm we 're they 've"), "it's I'm we're they've");
  EXPECT_EQ(clean_spaces_like_llama("don 't I 'd we 'll"), "don 't I 'd we 'll");
  EXPECT_EQ(clean_spaces_like_llama("x 'r"), "x 'r");
  EXPECT_EQ(clean_spaces_like_llama(""), "");
  EXPECT_EQ(clean_spaces_like_llama("."), ".");
}

TEST(TokenizerUtf8, Sanitize) {
  EXPECT_EQ(sanitize_utf8("abc \xC3\xA9 \xF0\x9F\x98\x80"), "abc \xC3\xA9 \xF0\x9F\x98\x80");
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(sanitize_utf8("\x80"), r);
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), r + r);                  // overlong: two subparts
  EXPECT_EQ(sanitize_utf8("\xE0\x80\x80"), r + r + r);          // overlong 3-byte form
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), r + r + r);          // surrogate
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(sanitize_utf8("\xE2\x82"
                          "a"),
            r + "a");  // truncated sequence is one subpart
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98"), r);
  EXPECT_EQ(sanitize_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(utf8_complete_prefix("ab\xC3"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xFF"), 3u);
  EXPECT_EQ(utf8_complete_prefix("\xE2\x82"
                                 "a"),
            3u);
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
}

// ------------------------------------------------------------------------------------------
// Gemma 3 tokenizer.json vs Hugging Face `tokenizers` (fixtures/tokenizer/README.md)

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const Tokenizer& gemma3_tokenizer() {
  static const Tokenizer tokenizer =
      Tokenizer::from_hf_json((test::fixtures_dir() / "tokenizer/tokenizer.json").string());
  return tokenizer;
}

struct Corpus {
  std::vector<std::string> texts;
  std::vector<Ids> ids;
};

const Corpus& gemma3_corpus() {
  static const Corpus corpus = [] {
    Corpus c;
    const auto dir = test::fixtures_dir() / "tokenizer";
    for (const std::string& line : read_lines(dir / "corpus.jsonl"))
      c.texts.push_back(json::parse(line).get<std::string>());
    for (const std::string& line : read_lines(dir / "ids.jsonl"))
      c.ids.push_back(json::parse(line).get<Ids>());
    return c;
  }();
  return corpus;
}

TEST(TokenizerGemma3Json, VocabularyShape) {
  G4_REQUIRE_FIXTURE("tokenizer/tokenizer.json");
  const Tokenizer& tok = gemma3_tokenizer();
  EXPECT_EQ(tok.n_vocab(), 262145u);
  EXPECT_EQ(tok.n_merges(), 514906u);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.token_id("<start_of_turn>"), 105);
  EXPECT_TRUE(tok.is_control(106));
  EXPECT_TRUE(tok.is_end_of_generation(106));              // <end_of_turn>
  EXPECT_EQ(tok.token_type(107), TokenType::UserDefined);  // "\n"
  EXPECT_EQ(tok.token_id("<0x00>"), 238);
  EXPECT_TRUE(tok.is_byte(238));
  EXPECT_EQ(tok.gemma4_specials().turn_start, kNoToken);  // a Gemma 3 vocabulary
}

TEST(TokenizerGemma3Json, CorpusIdsMatchHuggingFace) {
  G4_REQUIRE_FIXTURE("tokenizer/tokenizer.json");
  const Tokenizer& tok = gemma3_tokenizer();
  const Corpus& corpus = gemma3_corpus();
  ASSERT_EQ(corpus.texts.size(), 2500u);
  ASSERT_EQ(corpus.ids.size(), corpus.texts.size());
  int mismatches = 0;
  for (size_t i = 0; i < corpus.texts.size(); ++i) {
    const Ids ids = tok.encode(corpus.texts[i], /*add_bos=*/false, /*parse_special=*/true);
    if (ids != corpus.ids[i] && ++mismatches <= 5)
      ADD_FAILURE() << "corpus line " << i + 1 << " (" << json(corpus.texts[i]).dump() << ")";
    const Ids with_bos = tok.encode(corpus.texts[i], true, true);
    ASSERT_FALSE(with_bos.empty());
    EXPECT_EQ(with_bos[0], tok.bos_id());
    EXPECT_EQ(Ids(with_bos.begin() + 1, with_bos.end()), ids);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(TokenizerGemma3Json, CorpusDecodeRoundTrips) {
  G4_REQUIRE_FIXTURE("tokenizer/tokenizer.json");
  const Tokenizer& tok = gemma3_tokenizer();
  const Corpus& corpus = gemma3_corpus();
  int literal_space_markers = 0;
  for (size_t i = 0; i < corpus.texts.size(); ++i) {
    const std::string& text = corpus.texts[i];
    const std::string decoded = tok.decode(corpus.ids[i]);
    // A literal ▁ is the space marker and comes back as a space (README).
    if (text.find(kSpace) != std::string::npos) ++literal_space_markers;
    EXPECT_EQ(decoded, replace_all(text, kSpace, " ")) << "corpus line " << i + 1;
  }
  EXPECT_EQ(literal_space_markers, 32);
}

TEST(TokenizerGemma3Json, StreamingEqualsDecode) {
  G4_REQUIRE_FIXTURE("tokenizer/tokenizer.json");
  const Tokenizer& tok = gemma3_tokenizer();
  const Corpus& corpus = gemma3_corpus();
  for (size_t i = 0; i < corpus.texts.size(); ++i) {
    // The corpus is valid UTF-8, so sanitizing changes nothing and streaming == decode.
    for (bool special : {true, false})
      ASSERT_EQ(stream_decode(tok, corpus.ids[i], special),
                tok.decode(corpus.ids[i], {.render_special = special}))
          << "corpus line " << i + 1;
  }
}

// Splits `text` into maximal newline runs and the text between them. Special tokens contain no
// newline and BPE never merges across one, so encoding the pieces separately must give the
// same ids as encoding the whole text.
std::vector<std::string> split_newline_runs(const std::string& text) {
  std::vector<std::string> pieces;
  size_t pos = 0;
  while (pos < text.size()) {
    const bool newlines = text[pos] == '\n';
    size_t end = newlines ? text.find_first_not_of('\n', pos) : text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    pieces.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return pieces;
}

TEST(TokenizerGemma3Json, LongDocumentEqualsLineByLine) {
  G4_REQUIRE_FIXTURE("tokenizer/tokenizer.json");
  const Tokenizer& tok = gemma3_tokenizer();
  const Corpus& corpus = gemma3_corpus();
  // >100k tokens: the corpus (65k tokens) one and a half times, plus one 50k-character line.
  std::string document;
  for (size_t i = 0; i < corpus.texts.size() * 3 / 2; ++i) {
    document += corpus.texts[i % corpus.texts.size()];
    document += i % 7 == 0 ? "\n\n" : "\n";
  }
  for (int i = 0; i < 5000; ++i) document += "word" + std::to_string(i) + " ";
  document += "\n";

  const auto start = std::chrono::steady_clock::now();
  const Ids whole = tok.encode(document, true, true);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ info ] encoded %zu bytes into %zu tokens in %.3f s\n", document.size(),
              whole.size(), seconds);
  EXPECT_GT(whole.size(), 100000u);

  Ids pieces{tok.bos_id()};
  for (const std::string& piece : split_newline_runs(document)) {
    const Ids ids = tok.encode(piece, false, true);
    pieces.insert(pieces.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(whole, pieces);
  EXPECT_EQ(tok.decode(Ids(whole.begin() + 1, whole.end())), replace_all(document, kSpace, " "));
}

// ------------------------------------------------------------------------------------------
// gemma4-tiny GGUF vocabulary vs llama.cpp (fixtures/gemma4-tiny/tokens.json, TOLERANCES row 8)

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

const Tokenizer& tiny_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_gguf(
      GgufFile::open((test::fixtures_dir() / "gemma4-tiny/text-f32.gguf").string()));
  return tokenizer;
}

const json& tiny_tokens_json() {
  static const json tokens =
      json::parse(std::ifstream(test::fixtures_dir() / "gemma4-tiny/tokens.json"));
  return tokens;
}

TEST(TokenizerGemma4Tiny, Vocabulary) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  G4_REQUIRE_FIXTURE("gemma4-tiny/tokens.json");
  const Tokenizer& tok = tiny_tokenizer();
  const json& ref = tiny_tokens_json();
  EXPECT_EQ(tok.n_vocab(), ref["n_vocab"].get<size_t>());
  EXPECT_EQ(tok.n_merges(), 1152u);
  EXPECT_EQ(tok.bos_id(), ref["bos"].get<TokenId>());
  EXPECT_EQ(tok.eos_id(), ref["eos"].get<TokenId>());
  EXPECT_EQ(tok.pad_id(), ref["pad"].get<TokenId>());
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_EQ(tok.add_bos(), ref["add_bos"].get<bool>());
  // Ids of this vocabulary (README "Vocabulary"); the engine reads them, never assumes them.
  const Gemma4SpecialTokens& s = tok.gemma4_specials();
  EXPECT_EQ(s.turn_start, 15);
  EXPECT_EQ(s.turn_end, 16);
  EXPECT_EQ(s.tool_call_start, 7);
  EXPECT_EQ(s.tool_response_start, 9);
  EXPECT_EQ(s.string_quote, 11);
  EXPECT_EQ(s.think, 12);
  EXPECT_EQ(s.channel_start, 13);
  EXPECT_EQ(s.image_start, 17);
  EXPECT_EQ(s.image_end, 18);
  EXPECT_EQ(s.image_placeholder, 19);
  EXPECT_EQ(s.audio_end, 21);
  EXPECT_EQ(s.video_placeholder, 23);
  EXPECT_EQ(tok.token_type(13), TokenType::UserDefined);  // <|channel> renders as text
  EXPECT_EQ(tok.token_type(9), TokenType::Control);       // <|tool_response>: EOG, made CONTROL
  EXPECT_EQ(tok.end_of_generation_ids(), (Ids{1, 16, 9}));
  EXPECT_TRUE(tok.is_byte(27));
  EXPECT_EQ(tok.token_to_piece(27 + 0x41, true), "A");
}

TEST(TokenizerGemma4Tiny, TokensJsonCases) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  G4_REQUIRE_FIXTURE("gemma4-tiny/tokens.json");
  const Tokenizer& tok = tiny_tokenizer();
  const json& cases = tiny_tokens_json()["cases"];
  ASSERT_EQ(cases.size(), 51u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    SCOPED_TRACE("tokens.json case " + std::to_string(i) + ": " + c["text"].dump());
    const std::string text = from_hex(c["text_hex"]);
    const Ids ids = c["ids"].get<Ids>();
    EXPECT_EQ(tok.encode(text, false, true), ids);
    EXPECT_EQ(tok.encode(text, true, true), c["ids_add_special"].get<Ids>());
    EXPECT_EQ(tok.encode(text, false, false), c["ids_no_parse_special"].get<Ids>());
    ASSERT_EQ(c["pieces_hex"].size(), ids.size());
    for (size_t k = 0; k < ids.size(); ++k)
      EXPECT_EQ(hex(tok.token_to_piece(ids[k], true)), c["pieces_hex"][k].get<std::string>())
          << "piece " << k;
    // llama_detokenize applies clean_spaces; with it on we reproduce its bytes exactly.
    EXPECT_EQ(hex(tok.decode(ids, {.render_special = true, .clean_spaces = true})),
              c["detok_hex"].get<std::string>());
    EXPECT_EQ(hex(tok.decode(ids, {.render_special = false, .clean_spaces = true})),
              c["detok_no_special_hex"].get<std::string>());
    // The default decoder is exact: only a literal ▁ (case 42) does not come back.
    EXPECT_EQ(tok.decode(ids), replace_all(text, kSpace, " "));
    EXPECT_EQ(stream_decode(tok, ids, true), sanitize_utf8(tok.decode(ids)));
    EXPECT_EQ(stream_decode(tok, ids, false),
              sanitize_utf8(tok.decode(ids, {.render_special = false})));
  }
}

TEST(TokenizerGemma4Tiny, RandomBytesRoundTrip) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  const Tokenizer& tok = tiny_tokenizer();
  // Bytes biased towards what the tokenizer treats specially: '<', '|', '>', newlines, spaces,
  // UTF-8 lead and continuation bytes, and pieces of special tokens.
  const std::vector<std::string> alphabet = {
      "<",    "|",    ">",    "\n",   " ",       "a",       "e",      "\xE2", "\x96", "\x81",
      "\xC3", "\xA9", "\xF0", "\xFF", "<|turn>", "<turn|>", "<|\"|>", "turn", "\t",   "\r"};
  uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (int round = 0; round < 500; ++round) {
    std::string text;
    for (uint32_t k = next() % 40; k > 0; --k) text += alphabet[next() % alphabet.size()];
    for (bool parse_special : {true, false}) {
      const Ids ids = tok.encode(text, false, parse_special);
      ASSERT_EQ(tok.decode(ids), replace_all(text, kSpace, " ")) << hex(text);
      ASSERT_EQ(stream_decode(tok, ids, true), sanitize_utf8(tok.decode(ids))) << hex(text);
    }
  }
}

// ------------------------------------------------------------------------------------------
// GGUF loader on small generated files

void write_vocab_gguf(const std::filesystem::path& path, const TokenizerVocab& v,
                      const std::function<void(GgufWriter&)>& change = {}) {
  GgufWriter w;
  w.set_string("general.architecture", "gemma4");
  w.set_string("tokenizer.ggml.model", "gemma4");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  std::vector<int32_t> types;
  for (TokenType t : v.types) types.push_back(static_cast<int32_t>(t));
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_f32_array("tokenizer.ggml.scores", std::vector<float>(v.tokens.size(), 0.0f));
  w.set_string_array("tokenizer.ggml.merges", v.merges);
  w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  w.set_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  w.set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad_id));
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  if (change) change(w);
  w.write(path.string());
}

TEST(TokenizerGguf, SmallVocabularyRoundTrip) {
  test::TempDir dir;
  write_vocab_gguf(dir / "vocab.gguf", small_vocab());
  const Tokenizer from_file = Tokenizer::from_gguf(GgufFile::open((dir / "vocab.gguf").string()));
  const Tokenizer in_memory(small_vocab());
  EXPECT_EQ(from_file.n_vocab(), in_memory.n_vocab());
  EXPECT_EQ(from_file.n_merges(), in_memory.n_merges());
  EXPECT_TRUE(from_file.add_bos());  // forced for gemma4 although the file says false
  EXPECT_EQ(from_file.vocab().scores.size(), from_file.n_vocab());
  const std::string text = "<|turn>abc  ab\n\n\xC3\xA9<|\"|><turn|>";
  EXPECT_EQ(from_file.encode(text, true, true), in_memory.encode(text, true, true));
  EXPECT_EQ(from_file.encode(text, false, false), in_memory.encode(text, false, false));
}

TEST(TokenizerGguf, Errors) {
  test::TempDir dir;
  int n = 0;
  const auto load_with = [&](const std::function<void(GgufWriter&)>& change) {
    const std::string path = (dir / ("v" + std::to_string(n++) + ".gguf")).string();
    write_vocab_gguf(path, small_vocab(), change);
    return [path] { Tokenizer::from_gguf(GgufFile::open(path)); };
  };
  expect_error(load_with([](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "llama"); }),
               "tokenizer.ggml.model is 'llama', expected 'gemma4'");
  expect_error(load_with([](GgufWriter& w) { w.remove_key("tokenizer.ggml.model"); }),
               "tokenizer.ggml.model");
  expect_error(load_with([](GgufWriter& w) { w.remove_key("tokenizer.ggml.tokens"); }),
               "tokenizer.ggml.tokens");
  expect_error(load_with([](GgufWriter& w) { w.remove_key("tokenizer.ggml.token_type"); }),
               "missing tokenizer.ggml.token_type");
  expect_error(load_with([](GgufWriter& w) { w.set_i32_array("tokenizer.ggml.token_type", {1}); }),
               "token_type has 1 entries");
  expect_error(load_with([](GgufWriter& w) {
                 std::vector<int32_t> types(286, 1);
                 types[5] = 7;
                 w.set_i32_array("tokenizer.ggml.token_type", types);
               }),
               "token_type[5] = 7");
  expect_error(load_with([](GgufWriter& w) { w.remove_key("tokenizer.ggml.merges"); }),
               "missing tokenizer.ggml.merges");
  expect_error(
      load_with([](GgufWriter& w) { w.set_string_array("tokenizer.ggml.merges", {"a zz"}); }),
      "names unknown token 'zz'");
  expect_error(load_with([](GgufWriter& w) { w.set_u32("tokenizer.ggml.bos_token_id", 5000); }),
               "BOS token id 5000 is out of range");
  expect_error(load_with([](GgufWriter& w) { w.set_i32("tokenizer.ggml.eos_token_id", -3); }),
               "tokenizer.ggml.eos_token_id = -3");
  // Errors name the file.
  expect_error(load_with([](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "bert"); }),
               ".gguf");
}

}  // namespace
}  // namespace g4
