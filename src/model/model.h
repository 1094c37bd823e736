// A loaded Gemma 4 text model and its forward pass (spec §2).
//
//   Gemma4Model::load(path)      map the GGUF, read hyper-parameters, bind and check every tensor
//   ForwardPass fp(model, pool)  scratch space for running batches
//   fp.run(inputs, logits)       append tokens of one or more sequences to their KV caches, in one
//                                batched pass (prefill and decode are the same code path)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/hparams.h"
#include "model/kv_cache.h"
#include "core/large_buffer.h"
#include "model/weights.h"
#include "ops/matmul.h"
#include "runtime/sampler.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace g4 {

class ThreadPool;

struct HfCheckpoint;

struct Gemma4Model {
  Gemma4Model();
  ~Gemma4Model();

  std::string path;
  // What the weights point into: a GGUF file, or a Hugging Face checkpoint's safetensors shards.
  std::unique_ptr<GgufFile> gguf;
  std::unique_ptr<HfCheckpoint> checkpoint;
  Gemma4HParams hp;
  Gemma4Weights weights;
  // Matrices re-laid out for the SIMD kernels at load (ops/repack.h); weights point into them.
  LargeBuffer interleaved;
  std::unique_ptr<Tokenizer> tokenizer;     // null when the file carries no vocabulary
  std::optional<std::string> chat_template; // tokenizer.chat_template, when present
  SamplingParams sampling_defaults;         // general.sampling.*, else Gemma 4's published ones
  std::vector<int32_t> suppressed_tokens;   // tokenizer.ggml.suppress_tokens: never sampled
  std::vector<int32_t> end_of_generation;   // <eos>, <turn|>, <|tool_response>, ... (spec §6)

  // A GGUF file, or a Hugging Face checkpoint folder (config.json, safetensors, tokenizer.json).
  static std::unique_ptr<Gemma4Model> load(const std::string& path);
  int n_vocab() const { return hp.n_vocab; }
  // The tokenizer, or a g4::Error telling the user the file has none.
  const Tokenizer& require_tokenizer() const;
  // The chat template: the file's, else the built-in Gemma 4 one; parsed on first use (a broken
  // template only fails the commands that need it).
  const ChatTemplate& chat() const;
  bool is_end_of_generation(int32_t token) const;

 private:
  mutable std::mutex chat_mutex_;
  mutable std::unique_ptr<ChatTemplate> chat_;
};

// Marks a position whose input row is a soft embedding (image/audio) rather than a token id.
constexpr int32_t kSoftToken = -1;

// One sequence's share of a forward pass: tokens.size() new positions appended to `cache`.
struct SequenceInput {
  KvCache* cache = nullptr;
  std::vector<int32_t> tokens;             // token id per new position, or kSoftToken
  const float* soft_embeddings = nullptr;  // [n_soft][n_embd], taken in order by kSoftToken rows
  // Empty, or one id per position: consecutive positions with the same id >= 0 form a block that
  // attends bidirectionally on sliding layers (an image's soft tokens, spec §2.6).
  std::vector<int32_t> block_ids;
  std::vector<int32_t> output_rows;        // positions (indices into tokens) that need logits
};

// Optional observer of intermediate tensors (for debugging against reference dumps).
// name: "inp_scaled", "attn_norm", "Qcur_pos", "Kcur_pos", "Vcur_normed", "kqv_out", "attn_out",
// "ffn_out", "l_out", "result_norm"; data is [n_tokens][row_len] for all tokens of the pass.
using ForwardTrace = std::function<void(const char* name, int layer, const float* data,
                                        int64_t n_tokens, int64_t row_len)>;

class ForwardPass {
 public:
  // kFast lets the matmuls quantize activations; kPrecise keeps float32 throughout (what the
  // exact references compute).
  ForwardPass(const Gemma4Model& model, ThreadPool& pool, MatmulMode mode = MatmulMode::kFast);

  // Runs every input through the model together; caches advance by their token counts.
  // logits receives [n_outputs][n_vocab]: the output_rows of each input, in input order.
  // Raw logits after the final softcap; suppressed tokens are the sampler's business.
  // Throws g4::Error for bad ids, a full cache or inconsistent inputs (nothing is changed then).
  void run(std::span<SequenceInput> inputs, std::vector<float>& logits);

  void set_trace(ForwardTrace trace) { trace_ = std::move(trace); }
  // Bytes of scratch the pass holds now (it grows to the largest batch run so far), and what a
  // pass of n_tokens rows holds (the activations part of a memory plan).
  int64_t scratch_bytes() const;
  static int64_t scratch_bytes_for(const Gemma4HParams& hp, int64_t n_tokens);
  int64_t n_embd() const { return model_.hp.n_embd; }

 private:
  void validate(std::span<SequenceInput> inputs) const;
  void embed(std::span<SequenceInput> inputs);
  void attention_layer(int layer, std::span<SequenceInput> inputs);
  void attend(int layer, const SequenceInput& in, int64_t first_row);
  void ffn_layer(int layer);
  void compute_logits(std::span<SequenceInput> inputs, std::vector<float>& logits);
  void for_each_row(const std::function<void(int64_t row)>& fn);
  void trace(const char* name, int layer, const std::vector<float>& buf, int64_t row_len);

  const Gemma4Model& model_;
  ThreadPool& pool_;
  ForwardTrace trace_;
  MatmulMode matmul_mode_;

  // Scratch, [n_tokens][...] for the tokens of the current pass.
  int64_t n_tokens_ = 0;
  std::vector<int64_t> positions_;      // absolute position of each row
  std::vector<float> x_;                // residual stream [T][d]
  std::vector<float> xn_;               // normed input of a sub-block [T][d]
  std::vector<float> q_, k_, v_;        // projections [T][H*hd], [T][Hkv*hd]
  std::vector<float> attn_;             // attention output [T][H*hd]
  std::vector<float> proj_;             // sub-block output [T][d]
  std::vector<float> gate_, up_;        // FFN hidden [T][ff]
  std::vector<float> rope_swa_, rope_full_;  // cos/sin per row for each layer kind
};

// What running a model takes, before running it (gemma4 info, and the check that the engine
// stays within it).
struct MemoryPlan {
  int64_t weights = 0;          // tensors used, mapped from the file
  KvCache::Plan kv;             // sliding and full layers
  int64_t activations = 0;      // forward scratch for a batch, attention's partial sums, logits
  int64_t total() const { return weights + kv.total() + activations; }
};
MemoryPlan plan_memory(const Gemma4HParams& hp, int64_t weight_bytes, const KvCacheConfig& cache,
                       int64_t batch_size);

}  // namespace g4
