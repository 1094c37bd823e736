#include "model/model.h"

#include <algorithm>

#include "core/error.h"

namespace g4 {
namespace {

// Token ids that end generation (spec §6): the declared eos/eot ids plus the Gemma 4 turn and
// tool-response markers, looked up by text in the vocabulary rather than hard-coded.
std::vector<int32_t> read_end_of_generation(const GgufFile& f, int n_vocab) {
  std::vector<int32_t> ids;
  auto add = [&](int64_t id) {
    if (id >= 0 && id < n_vocab && std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(int32_t(id));
  };
  if (auto id = f.get_int_opt("tokenizer.ggml.eos_token_id")) add(*id);
  if (auto id = f.get_int_opt("tokenizer.ggml.eot_token_id")) add(*id);
  if (f.has("tokenizer.ggml.tokens")) {
    const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
    for (const char* marker : {"<eos>", "<turn|>", "<|tool_response>"}) {
      const auto it = std::find(tokens.begin(), tokens.end(), marker);
      if (it != tokens.end()) add(it - tokens.begin());
    }
  }
  return ids;
}

}  // namespace

std::unique_ptr<Gemma4Model> Gemma4Model::load(const std::string& path) {
  auto model = std::make_unique<Gemma4Model>(Gemma4Model{GgufFile::open(path), {}, {}, {}, {}});
  const GgufFile& f = model->file;
  model->hp = read_gemma4_hparams(f);
  model->weights = bind_gemma4_weights(f, model->hp);
  model->hp.n_vocab = int(model->weights.token_embd.rows);
  if (f.has("tokenizer.ggml.tokens")) {
    const GgufKv* kv = f.find("tokenizer.ggml.tokens");
    if (kv->type != GgufValueType::ARRAY || kv->array_count != uint64_t(model->hp.n_vocab))
      fail(f.path(), ": tokenizer.ggml.tokens has ", kv->array_count, " entries but token_embd has ",
           model->hp.n_vocab, " rows");
  }
  if (f.has("tokenizer.ggml.suppress_tokens")) {
    for (int64_t id : f.get_int_array("tokenizer.ggml.suppress_tokens")) {
      if (id < 0 || id >= model->hp.n_vocab)
        fail(f.path(), ": tokenizer.ggml.suppress_tokens names token ", id, ", outside the vocabulary of ",
             model->hp.n_vocab);
      model->suppressed_tokens.push_back(int32_t(id));
    }
  }
  model->end_of_generation = read_end_of_generation(f, model->hp.n_vocab);
  return model;
}

}  // namespace g4
