// softmax(q k^T) v for the new positions of one sequence in one layer (spec §2.3, §2.6), tiled
// with an online softmax ("flash" attention): memory stays O(tile), not O(positions^2).
#pragma once

#include <cstdint>

#include "model/hparams.h"

namespace g4 {

class KvCache;
class ThreadPool;

struct AttentionInput {
  int layer = 0;
  const LayerGeometry* geometry = nullptr;
  int n_head = 0;
  int sliding_window = 0;
  const KvCache* cache = nullptr;  // keys/values of positions before pos0
  int64_t pos0 = 0;                // position of the first new row
  int64_t n = 0;                   // new rows
  const float* q = nullptr;        // [n][n_head * head_dim]
  const float* k = nullptr;        // [n][n_head_kv * head_dim], this pass's keys (cache precision)
  const float* v = nullptr;        // same for values
  const int32_t* block_ids = nullptr;  // null, or per new row: bidirectional block id or -1
  float* out = nullptr;            // [n][n_head * head_dim]
};

// The mask (spec §2.3, §2.6): row p sees keys in one interval. Causal, limited to the window on
// sliding layers, where the rows of one block (an image) also see the block's later rows.
void attention(const AttentionInput& in, ThreadPool& pool);

// A decoding step computes the partial softmax states of up to this many (KV head, key split)
// pairs at once (each: the query heads of one KV head x head_dim + 2 floats), then merges them.
constexpr int64_t kAttentionDecodeWave = 64;

}  // namespace g4
