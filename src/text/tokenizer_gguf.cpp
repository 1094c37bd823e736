// Tokenizer from GGUF metadata (tokenizer.ggml.*, ggml docs/gguf.md; spec §5.1, §6). Kept in its
// own file so that the rest of the tokenizer does not depend on the GGUF reader.
#include <climits>

#include "core/error.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"

namespace g4 {

namespace {

TokenId special_id(const GgufFile& file, std::string_view key) {
  const std::optional<int64_t> id = file.get_int_opt(key);
  if (!id) return kNoToken;
  if (*id < 0 || *id > INT32_MAX) fail(file.path(), ": ", key, " = ", *id, " is not a token id");
  return static_cast<TokenId>(*id);
}

}  // namespace

TokenizerVocab Tokenizer::vocab_from_gguf(const GgufFile& file) {
  const std::string model = file.get_string("tokenizer.ggml.model");
  if (model != "gemma4")
    fail(file.path(), ": tokenizer.ggml.model is '", model,
         "', expected 'gemma4' (only the Gemma 4 tokenizer is supported)");

  TokenizerVocab vocab;
  vocab.source = file.path();
  vocab.tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (!file.has("tokenizer.ggml.token_type"))
    fail(file.path(), ": missing tokenizer.ggml.token_type (needed to find the special tokens)");
  const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
  if (types.size() != vocab.tokens.size())
    fail(file.path(), ": tokenizer.ggml.token_type has ", types.size(), " entries for ",
         vocab.tokens.size(), " tokens");
  vocab.types.reserve(types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] < 0 || types[i] > static_cast<int64_t>(TokenType::Byte))
      fail(file.path(), ": tokenizer.ggml.token_type[", i, "] = ", types[i],
           " is not a token type (0..6)");
    vocab.types.push_back(static_cast<TokenType>(types[i]));
  }
  if (file.has("tokenizer.ggml.scores"))
    vocab.scores = file.get_float_array("tokenizer.ggml.scores");
  if (!file.has("tokenizer.ggml.merges"))
    fail(file.path(), ": missing tokenizer.ggml.merges (the gemma4 tokenizer is BPE)");
  vocab.merges = file.get_string_array("tokenizer.ggml.merges");

  vocab.bos_id = special_id(file, "tokenizer.ggml.bos_token_id");
  vocab.eos_id = special_id(file, "tokenizer.ggml.eos_token_id");
  vocab.unk_id = special_id(file, "tokenizer.ggml.unknown_token_id");
  vocab.pad_id = special_id(file, "tokenizer.ggml.padding_token_id");
  // llama.cpp forces add_bos for the gemma4 pre-tokenizer whatever tokenizer.ggml.add_bos_token
  // says, and a Gemma 4 prompt must start with exactly one <bos> (spec §6).
  vocab.add_bos = true;
  return vocab;
}

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  return Tokenizer(vocab_from_gguf(file));
}

}  // namespace g4
