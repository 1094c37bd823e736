// Tokenizer from a Hugging Face tokenizer.json (the `tokenizers` library format) with a BPE
// model. Only what a SentencePiece-style Gemma tokenizer uses is read: model.vocab,
// model.merges, model.byte_fallback, model.unk_token, added_tokens and the BOS of the
// post-processor. The normalizer (' ' -> '▁') and pre-tokenizer are those of Gemma and are
// implemented in tokenizer.cpp rather than interpreted.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "text/tokenizer.h"

namespace g4 {

namespace {

using nlohmann::json;

const json& require(const json& object, const char* key, const std::string& where,
                    const std::string& source) {
  if (!object.is_object()) fail(source, ": ", where, " is not a JSON object");
  const auto it = object.find(key);
  if (it == object.end()) fail(source, ": ", where, " has no \"", key, "\"");
  return *it;
}

// Largest id accepted; guards the vocabulary allocation against absurd ids.
constexpr uint64_t kMaxTokenId = 1u << 26;

TokenId parse_id(const json& value, const std::string& what, const std::string& source) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      static_cast<uint64_t>(value.get<int64_t>()) > kMaxTokenId)
    fail(source, ": ", what, " has id ", value.dump(), ", expected an integer in [0, ", kMaxTokenId,
         "]");
  return static_cast<TokenId>(value.get<int64_t>());
}

// Merges are either "left right" strings (older files) or ["left", "right"] pairs.
std::string parse_merge(const json& merge, size_t rank, const std::string& source) {
  if (merge.is_string()) return merge.get<std::string>();
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string())
    return merge[0].get<std::string>() + " " + merge[1].get<std::string>();
  fail(source, ": model.merges[", rank, "] is ", merge.dump(),
       ", expected \"left right\" or [\"left\", \"right\"]");
}

// True when post_processor.single starts with a SpecialToken whose id is `bos_text`.
bool post_processor_adds_bos(const json& root, const std::string& bos_text) {
  const auto pp = root.find("post_processor");
  if (pp == root.end() || !pp->is_object()) return false;
  const auto single = pp->find("single");
  if (single == pp->end() || !single->is_array() || single->empty()) return false;
  const json& first = (*single)[0];
  if (!first.is_object()) return false;
  const auto special = first.find("SpecialToken");
  if (special == first.end() || !special->is_object()) return false;
  const auto id = special->find("id");
  return id != special->end() && id->is_string() && id->get<std::string>() == bos_text;
}

}  // namespace

namespace {

TokenizerVocab parse_hf_tokenizer(std::string_view json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    fail(source, ": not valid JSON: ", e.what());
  }
  if (!root.is_object()) fail(source, ": the top level is not a JSON object");

  const json& model = require(root, "model", "the top level", source);
  if (!model.is_object()) fail(source, ": \"model\" is not a JSON object");
  if (const auto type = model.find("type"); type != model.end()) {
    if (!type->is_string() || type->get<std::string>() != "BPE")
      fail(source, ": model.type is ", type->dump(), ", only \"BPE\" is supported");
  }
  const json& vocab_json = require(model, "vocab", "model", source);
  if (!vocab_json.is_object()) fail(source, ": model.vocab is not a JSON object");
  const json& merges_json = require(model, "merges", "model", source);
  if (!merges_json.is_array()) fail(source, ": model.merges is not a JSON array");
  const bool byte_fallback = model.value("byte_fallback", false);

  const json empty_array = json::array();
  const auto added_it = root.find("added_tokens");
  const json& added = added_it == root.end() || added_it->is_null() ? empty_array : *added_it;
  if (!added.is_array()) fail(source, ": added_tokens is not a JSON array");

  // Ids may come from the model vocabulary and from added_tokens; together they must cover
  // 0..n-1 without holes.
  size_t n = 0;
  for (const auto& [text, id_json] : vocab_json.items()) {
    n = std::max(
        n, static_cast<size_t>(parse_id(id_json, "model.vocab entry '" + text + "'", source)) + 1);
  }
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string what = "added_tokens[" + std::to_string(i) + "]";
    n = std::max(
        n, static_cast<size_t>(parse_id(require(added[i], "id", what, source), what, source)) + 1);
  }

  TokenizerVocab vocab;
  vocab.source = source;
  vocab.tokens.resize(n);
  vocab.types.assign(n, TokenType::Undefined);  // Undefined = no text yet
  for (const auto& [text, id_json] : vocab_json.items()) {
    const TokenId id = id_json.get<TokenId>();
    if (vocab.types[id] != TokenType::Undefined)
      fail(source, ": model.vocab gives id ", id, " to both '", vocab.tokens[id], "' and '", text,
           "'");
    vocab.tokens[id] = text;
    const bool is_byte =
        byte_fallback && text.size() == 6 && text.rfind("<0x", 0) == 0 && text.back() == '>';
    vocab.types[id] = is_byte ? TokenType::Byte : TokenType::Normal;
  }

  for (size_t i = 0; i < added.size(); ++i) {
    const std::string what = "added_tokens[" + std::to_string(i) + "]";
    const json& entry = added[i];
    const TokenId id = entry["id"].get<TokenId>();
    const json& content = require(entry, "content", what, source);
    if (!content.is_string()) fail(source, ": ", what, ".content is not a string");
    const std::string text = content.get<std::string>();
    if (vocab.types[id] != TokenType::Undefined && vocab.tokens[id] != text)
      fail(source, ": ", what, " '", text, "' reuses id ", id, " of '", vocab.tokens[id], "'");
    vocab.tokens[id] = text;
    const auto special = entry.find("special");
    const bool is_special = special != entry.end() && special->is_boolean() && special->get<bool>();
    vocab.types[id] = is_special ? TokenType::Control : TokenType::UserDefined;
  }

  for (size_t id = 0; id < n; ++id) {
    if (vocab.types[id] == TokenType::Undefined)
      fail(source, ": no token has id ", id, " (ids must be 0..", n - 1, " without gaps)");
  }

  vocab.merges.reserve(merges_json.size());
  for (size_t rank = 0; rank < merges_json.size(); ++rank)
    vocab.merges.push_back(parse_merge(merges_json[rank], rank, source));

  // tokenizer.json has no roles for special tokens (they live in tokenizer_config.json); Gemma
  // uses these names.
  const auto find_text = [&](const std::string& text) {
    for (size_t id = 0; id < n; ++id)
      if (vocab.tokens[id] == text) return static_cast<TokenId>(id);
    return kNoToken;
  };
  if (const auto unk = model.find("unk_token"); unk != model.end() && !unk->is_null()) {
    if (!unk->is_string()) fail(source, ": model.unk_token is not a string");
    vocab.unk_id = find_text(unk->get<std::string>());
    if (vocab.unk_id == kNoToken)
      fail(source, ": model.unk_token '", unk->get<std::string>(), "' is not in the vocabulary");
    vocab.types[vocab.unk_id] = TokenType::Unknown;
  }
  vocab.bos_id = find_text("<bos>");
  vocab.eos_id = find_text("<eos>");
  vocab.pad_id = find_text("<pad>");
  vocab.add_bos = vocab.bos_id != kNoToken && post_processor_adds_bos(root, "<bos>");
  return vocab;
}

}  // namespace

TokenizerVocab Tokenizer::vocab_from_hf_json_text(std::string_view json_text,
                                                  const std::string& source) {
  try {
    return parse_hf_tokenizer(json_text, source);
  } catch (const json::exception& e) {  // a value of the wrong JSON type somewhere
    fail(source, ": unexpected tokenizer.json content: ", e.what());
  }
}

TokenizerVocab Tokenizer::vocab_from_hf_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open tokenizer.json");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail(path, ": read error");
  return vocab_from_hf_json_text(buffer.str(), path);
}

Tokenizer Tokenizer::from_hf_json(const std::string& path) {
  return Tokenizer(vocab_from_hf_json(path));
}

}  // namespace g4
