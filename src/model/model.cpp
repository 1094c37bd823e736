#include "model/model.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "model/hf_checkpoint.h"

namespace g4 {

Gemma4Model::Gemma4Model() = default;
Gemma4Model::~Gemma4Model() = default;

std::unique_ptr<Gemma4Model> Gemma4Model::load(const std::string& path) {
  if (std::filesystem::is_directory(path)) return load_hf_gemma4(path);
  auto model = std::make_unique<Gemma4Model>();
  model->path = path;
  model->gguf = std::make_unique<GgufFile>(GgufFile::open(path));
  const GgufFile& f = *model->gguf;
  model->hp = read_gemma4_hparams(f);
  model->weights = bind_gemma4_weights(f, model->hp);
  model->interleaved = interleave_for_kernels(model->weights);
  model->hp.n_vocab = int(model->weights.token_embd.rows);
  const int n_vocab = model->hp.n_vocab;
  if (f.has("tokenizer.ggml.tokens")) {
    model->tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(f));
    if (model->tokenizer->n_vocab() != size_t(n_vocab))
      fail(f.path(), ": tokenizer.ggml.tokens has ", model->tokenizer->n_vocab(),
           " entries but token_embd has ", n_vocab, " rows");
  }
  model->chat_template = f.get_string_opt("tokenizer.chat_template");
  model->sampling_defaults = default_sampling_params(f);
  if (f.has("tokenizer.ggml.suppress_tokens")) {
    for (int64_t id : f.get_int_array("tokenizer.ggml.suppress_tokens")) {
      if (id < 0 || id >= n_vocab)
        fail(f.path(), ": tokenizer.ggml.suppress_tokens names token ", id,
             ", outside the vocabulary of ", n_vocab);
      model->suppressed_tokens.push_back(int32_t(id));
    }
  }
  // End of generation (spec §6): the tokenizer's stop set (<eos>, <turn|>, <|tool_response>,
  // found by text) plus whatever eos/eot ids the file declares.
  auto add_eog = [&](int64_t id) {
    auto& eog = model->end_of_generation;
    if (id >= 0 && id < n_vocab && std::find(eog.begin(), eog.end(), id) == eog.end())
      eog.push_back(int32_t(id));
  };
  if (model->tokenizer)
    for (TokenId id : model->tokenizer->end_of_generation_ids()) add_eog(id);
  if (auto id = f.get_int_opt("tokenizer.ggml.eos_token_id")) add_eog(*id);
  if (auto id = f.get_int_opt("tokenizer.ggml.eot_token_id")) add_eog(*id);
  return model;
}

const Tokenizer& Gemma4Model::require_tokenizer() const {
  if (!tokenizer)
    fail(path, ": the model file has no tokenizer (tokenizer.ggml.* keys); give token ids with --ids");
  return *tokenizer;
}

const ChatTemplate& Gemma4Model::chat() const {
  // Not std::call_once: a template that fails to parse must fail every call, not hang the next.
  std::lock_guard<std::mutex> lock(chat_mutex_);
  if (!chat_) chat_ = std::make_unique<ChatTemplate>(ChatTemplate::from_model(chat_template));
  return *chat_;
}

bool Gemma4Model::is_end_of_generation(int32_t token) const {
  return std::find(end_of_generation.begin(), end_of_generation.end(), token) != end_of_generation.end();
}

}  // namespace g4
