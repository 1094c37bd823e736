// The forward pass on random Gemma 4 models of many shapes, against a second, deliberately naive
// implementation written here from the spec (§2): float64 everywhere, whole sequence at once, no
// cache, the attention mask spelled out per (query, key) pair. Also checks that prefill, token by
// token decode and chunked prefill (across the sliding window boundary) agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "model/random_model.h"
#include "ops/kernels.h"
#include "ops/quant.h"
#include "ops/repack.h"
#include "runtime/sampler.h"
#include "test_util.h"

namespace g4 {
namespace {

using Matrix = std::vector<std::vector<double>>;  // [rows][cols]

// ---- the naive float64 reference -------------------------------------------------------------

struct NaiveModel {
  const GgufFile& f;
  explicit NaiveModel(const GgufFile& file) : f(file) {}

  std::vector<double> vec(const std::string& name) const {
    const GgufTensorInfo& t = f.tensor(name);
    std::vector<float> tmp(size_t(t.n_elements()));
    dequantize_row(t.type, t.data, tmp.data(), t.n_elements());
    return {tmp.begin(), tmp.end()};
  }
  Matrix mat(const std::string& name) const {  // PyTorch [out][in]
    const GgufTensorInfo& t = f.tensor(name);
    Matrix m(size_t(t.ne[1]), std::vector<double>(size_t(t.ne[0])));
    std::vector<float> row(size_t(t.ne[0]));
    const int64_t row_bytes = ggml_row_bytes(t.type, t.ne[0]);
    for (int64_t r = 0; r < t.ne[1]; ++r) {
      dequantize_row(t.type, t.data + r * row_bytes, row.data(), t.ne[0]);
      m[size_t(r)].assign(row.begin(), row.end());
    }
    return m;
  }
  static std::vector<double> matvec(const Matrix& m, const std::vector<double>& x) {
    std::vector<double> y(m.size());
    for (size_t r = 0; r < m.size(); ++r)
      for (size_t c = 0; c < x.size(); ++c) y[r] += m[r][c] * x[c];
    return y;
  }
  static std::vector<double> rms(std::vector<double> x, const std::vector<double>* w, double eps) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double s = 1.0 / std::sqrt(ss / double(x.size()) + eps);
    for (size_t i = 0; i < x.size(); ++i) x[i] *= s * (w ? (*w)[i] : 1.0);
    return x;
  }

  // Logits [position][vocab] for `ids`; block[i] >= 0 groups bidirectional positions (sliding only).
  std::vector<std::vector<double>> logits(const std::vector<int32_t>& ids, const std::vector<int>& block) const {
    const std::string a = "gemma4.";
    const int64_t d = f.get_int(a + "embedding_length"), L = f.get_int(a + "block_count");
    const int64_t H = f.get_int(a + "attention.head_count"), W = f.get_int(a + "attention.sliding_window");
    const double eps = f.get_float(a + "attention.layer_norm_rms_epsilon");
    const auto kv_heads = f.get_int_array(a + "attention.head_count_kv");
    const auto sliding = f.get_bool_array(a + "attention.sliding_window_pattern");
    const Matrix E = mat("token_embd.weight");
    const auto freqs = vec("rope_freqs.weight");
    const size_t T = ids.size();

    std::vector<std::vector<double>> x(T);
    for (size_t t = 0; t < T; ++t) {
      x[t] = E[size_t(ids[t])];
      for (double& v : x[t]) v *= double(std::sqrt(float(d)));  // sqrtf(d), as the fixtures
    }
    for (int64_t l = 0; l < L; ++l) {
      const std::string p = cat("blk.", l, ".");
      const bool swa = sliding[size_t(l)];
      const int64_t hd = f.get_int(a + (swa ? "attention.key_length_swa" : "attention.key_length"));
      const int64_t Hkv = kv_heads[size_t(l)];
      const double base = f.get_float(a + (swa ? "rope.freq_base_swa" : "rope.freq_base"));
      const auto attn_norm = vec(p + "attn_norm.weight"), qn = vec(p + "attn_q_norm.weight"),
                 kn = vec(p + "attn_k_norm.weight"), pan = vec(p + "post_attention_norm.weight"),
                 fn = vec(p + "ffn_norm.weight"), pfn = vec(p + "post_ffw_norm.weight");
      const Matrix Wq = mat(p + "attn_q.weight"), Wk = mat(p + "attn_k.weight"), Wo = mat(p + "attn_output.weight"),
                   Wg = mat(p + "ffn_gate.weight"), Wu = mat(p + "ffn_up.weight"), Wd = mat(p + "ffn_down.weight");
      const bool has_v = f.find_tensor(p + "attn_v.weight") != nullptr;
      const Matrix Wv = has_v ? mat(p + "attn_v.weight") : Matrix{};
      const double scale = f.find_tensor(p + "layer_output_scale.weight") ? vec(p + "layer_output_scale.weight")[0] : 1.0;

      // q, k, v per position and head
      std::vector<std::vector<std::vector<double>>> Q(T), K(T), V(T);
      auto rope = [&](std::vector<double>& v, int64_t pos) {
        for (int64_t i = 0; i < hd / 2; ++i) {
          double inv = std::pow(base, -2.0 * double(i) / double(hd));
          if (!swa) inv /= freqs[size_t(i)];
          const double c = std::cos(double(pos) * inv), s = std::sin(double(pos) * inv);
          const double x0 = v[size_t(i)], x1 = v[size_t(i + hd / 2)];
          v[size_t(i)] = x0 * c - x1 * s;
          v[size_t(i + hd / 2)] = x1 * c + x0 * s;
        }
      };
      for (size_t t = 0; t < T; ++t) {
        const auto h_in = rms(x[t], &attn_norm, eps);
        const auto q = matvec(Wq, h_in), k = matvec(Wk, h_in);
        const auto v = has_v ? matvec(Wv, h_in) : k;  // k_eq_v: the raw K projection
        for (int64_t h = 0; h < H; ++h) {
          auto qh = rms(std::vector<double>(q.begin() + h * hd, q.begin() + (h + 1) * hd), &qn, eps);
          rope(qh, int64_t(t));
          Q[t].push_back(qh);
        }
        for (int64_t h = 0; h < Hkv; ++h) {
          auto kh = rms(std::vector<double>(k.begin() + h * hd, k.begin() + (h + 1) * hd), &kn, eps);
          rope(kh, int64_t(t));
          K[t].push_back(kh);
          V[t].push_back(rms(std::vector<double>(v.begin() + h * hd, v.begin() + (h + 1) * hd), nullptr, eps));
        }
      }
      for (size_t t = 0; t < T; ++t) {
        std::vector<double> o(size_t(H * hd));
        for (int64_t h = 0; h < H; ++h) {
          const int64_t g = h / (H / Hkv);
          std::vector<double> s(T, -INFINITY);
          for (size_t j = 0; j < T; ++j) {
            const bool same_block = block[t] >= 0 && block[j] == block[t];
            bool visible = swa ? ((j <= t || same_block) && int64_t(t) - int64_t(j) < W) : j <= t;
            if (!visible) continue;
            s[j] = 0;
            for (int64_t i = 0; i < hd; ++i) s[j] += Q[t][size_t(h)][size_t(i)] * K[j][size_t(g)][size_t(i)];
          }
          double mx = -INFINITY, z = 0;
          for (double v : s) mx = std::max(mx, v);
          for (double& v : s) z += (v = std::exp(v - mx));
          for (size_t j = 0; j < T; ++j)
            for (int64_t i = 0; i < hd; ++i) o[size_t(h * hd + i)] += s[j] / z * V[j][size_t(g)][size_t(i)];
        }
        auto attn = rms(matvec(Wo, o), &pan, eps);
        for (int64_t i = 0; i < d; ++i) x[t][size_t(i)] += attn[size_t(i)];
        const auto fin = rms(x[t], &fn, eps);
        auto gate = matvec(Wg, fin);
        const auto up = matvec(Wu, fin);
        for (size_t i = 0; i < gate.size(); ++i) {
          const double gx = gate[i];
          gate[i] = 0.5 * gx * (1 + std::tanh(std::sqrt(2 / M_PI) * (gx + 0.044715 * gx * gx * gx))) * up[i];
        }
        const auto ffn = rms(matvec(Wd, gate), &pfn, eps);
        for (int64_t i = 0; i < d; ++i) x[t][size_t(i)] = (x[t][size_t(i)] + ffn[size_t(i)]) * scale;
      }
    }
    const auto on = vec("output_norm.weight");
    const double cap = f.get_float(a + "final_logit_softcapping");
    std::vector<std::vector<double>> out;
    for (size_t t = 0; t < T; ++t) {
      auto lg = matvec(E, rms(x[t], &on, eps));
      for (double& v : lg) v = cap * std::tanh(v / cap);
      out.push_back(lg);
    }
    return out;
  }
};

// ---- the engine under test ----------------------------------------------------------------------

// Runs `ids` through the engine in chunks of `chunk` tokens (0: all at once) and returns the
// logits of every position.
std::vector<float> engine_logits(const Gemma4Model& m, const std::vector<int32_t>& ids, size_t chunk,
                                 ThreadPool& pool, GgmlType cache_type = GgmlType::F32) {
  KvCache cache(m.hp, KvCacheConfig{int64_t(ids.size()), cache_type, cache_type});
  ForwardPass forward(m, pool, MatmulMode::kPrecise);
  std::vector<float> all, logits;
  if (chunk == 0) chunk = ids.size();
  for (size_t start = 0; start < ids.size(); start += chunk) {
    SequenceInput in;
    in.cache = &cache;
    const size_t end = std::min(ids.size(), start + chunk);
    in.tokens.assign(ids.begin() + std::ptrdiff_t(start), ids.begin() + std::ptrdiff_t(end));
    for (size_t i = 0; i < in.tokens.size(); ++i) in.output_rows.push_back(int32_t(i));
    forward.run(std::span<SequenceInput>(&in, 1), logits);
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

std::vector<int32_t> random_ids(int n, int n_vocab, uint64_t seed) {
  std::vector<int32_t> ids = {2};
  uint64_t s = seed;
  while (int(ids.size()) < n) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    ids.push_back(int32_t((s >> 33) % uint64_t(n_vocab - 300)) + 300);
  }
  return ids;
}

struct ShapeCase {
  const char* name;
  RandomModelSpec spec;
  int n_tokens;
};

class RandomModelTest : public testing::TestWithParam<ShapeCase> {};

TEST_P(RandomModelTest, MatchesNaiveFloat64Reference) {
  test::TempDir dir;
  const ShapeCase& c = GetParam();
  ThreadPool pool(2);
  const std::string path = (dir / "model.gguf").string();
  write_random_gemma4(c.spec, path, pool);
  const auto model = Gemma4Model::load(path);
  const std::vector<int32_t> ids = random_ids(c.n_tokens, c.spec.n_vocab, c.spec.seed);
  const std::vector<int> no_blocks(ids.size(), -1);
  const auto ref = NaiveModel(*model->gguf).logits(ids, no_blocks);
  const std::vector<float> got = engine_logits(*model, ids, 0, pool);
  const size_t V = size_t(model->n_vocab());
  double max_diff = 0;
  for (size_t t = 0; t < ids.size(); ++t)
    for (size_t v = 0; v < V; ++v) max_diff = std::max(max_diff, std::abs(got[t * V + v] - ref[t][v]));
  // Same bound as TOLERANCES.md row 1 (float32 engine vs float64 reference).
  EXPECT_LE(max_diff, 1e-3) << c.name;
}

TEST_P(RandomModelTest, PrefillDecodeAndChunksAgree) {
  test::TempDir dir;
  const ShapeCase& c = GetParam();
  ThreadPool pool(2);
  const std::string path = (dir / "model.gguf").string();
  write_random_gemma4(c.spec, path, pool);
  const auto model = Gemma4Model::load(path);
  const std::vector<int32_t> ids = random_ids(c.n_tokens, c.spec.n_vocab, c.spec.seed + 7);
  // For every cache type: decode one token at a time, and chunks that straddle the window (sizes
  // coprime to it), give what one pass gives. New rows are rounded to the cache type before use,
  // so only float32 summation order differs between the paths.
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    const int64_t block = ggml_type_info(type).block_size;
    const bool fits = std::all_of(model->hp.layers.begin(), model->hp.layers.end(),
                                  [&](const LayerGeometry& g) { return g.head_dim % block == 0; });
    if (!fits) {
      EXPECT_THROW(engine_logits(*model, ids, 0, pool, type), Error);  // refused with a clear error
      continue;
    }
    const std::vector<float> whole = engine_logits(*model, ids, 0, pool, type);
    for (size_t chunk : {size_t(1), size_t(3), size_t(c.spec.sliding_window + 1)}) {
      const std::vector<float> chunked = engine_logits(*model, ids, chunk, pool, type);
      ASSERT_EQ(chunked.size(), whole.size());
      double max_diff = 0;
      for (size_t i = 0; i < whole.size(); ++i) max_diff = std::max(max_diff, double(std::abs(whole[i] - chunked[i])));
      EXPECT_LE(max_diff, 1e-4) << c.name << " " << ggml_type_name(type) << " chunk " << chunk;
    }
  }
}

RandomModelSpec shape(int embd, int layers, int heads, int kv_swa, int kv_full, int hd_swa, int hd_full, int ff,
                      int window, int full_every, GgmlType type, uint64_t seed) {
  RandomModelSpec s;
  s.n_embd = embd;
  s.n_layer = layers;
  s.n_head = heads;
  s.n_head_kv_swa = kv_swa;
  s.n_head_kv_full = kv_full;
  s.head_dim_swa = hd_swa;
  s.head_dim_full = hd_full;
  s.n_ff = ff;
  s.n_vocab = 400;
  s.sliding_window = window;
  s.full_every = full_every;
  s.type = type;
  s.seed = seed;
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, RandomModelTest,
    testing::Values(
        ShapeCase{"tiny_default", RandomModelSpec{}, 24},
        ShapeCase{"window3_two_full", shape(64, 5, 4, 2, 1, 32, 64, 96, 3, 2, GgmlType::F32, 11), 20},
        ShapeCase{"mha_window1", shape(96, 3, 2, 2, 2, 48, 64, 64, 1, 3, GgmlType::F32, 12), 9},
        ShapeCase{"wide_heads_q8", shape(128, 4, 8, 4, 1, 32, 64, 256, 5, 4, GgmlType::Q8_0, 13), 17},
        ShapeCase{"k_quants", shape(256, 3, 2, 1, 1, 128, 256, 256, 6, 3, GgmlType::Q4_K, 14), 15},
        ShapeCase{"all_full_window_large", shape(64, 2, 4, 4, 2, 16, 32, 64, 64, 1, GgmlType::F16, 15), 12}),
    [](const testing::TestParamInfo<ShapeCase>& info) { return std::string(info.param.name); });

TEST(ForwardBlockMaskTest, ImageBlockIsBidirectionalOnSlidingLayersOnly) {
  test::TempDir dir;
  ThreadPool pool(2);
  RandomModelSpec spec = shape(64, 4, 4, 2, 1, 32, 64, 96, 4, 2, GgmlType::F32, 21);
  const std::string path = (dir / "model.gguf").string();
  write_random_gemma4(spec, path, pool);
  const auto model = Gemma4Model::load(path);
  const std::vector<int32_t> ids = random_ids(16, spec.n_vocab, 5);
  std::vector<int> block(ids.size(), -1);
  for (size_t i = 4; i < 11; ++i) block[i] = 0;  // a 7-token "image" longer than the window
  const auto ref = NaiveModel(*model->gguf).logits(ids, block);
  // The block must be in one pass: chunk so that it is (prefix 4, then the rest).
  KvCache cache(model->hp, KvCacheConfig{16, GgmlType::F32, GgmlType::F32});
  ForwardPass forward(*model, pool, MatmulMode::kPrecise);
  std::vector<float> got, logits;
  for (auto [b, e] : {std::pair<size_t, size_t>{0, 4}, {4, 16}}) {
    SequenceInput in;
    in.cache = &cache;
    in.tokens.assign(ids.begin() + std::ptrdiff_t(b), ids.begin() + std::ptrdiff_t(e));
    in.block_ids.assign(block.begin() + std::ptrdiff_t(b), block.begin() + std::ptrdiff_t(e));
    for (size_t i = 0; i < in.tokens.size(); ++i) in.output_rows.push_back(int32_t(i));
    forward.run(std::span<SequenceInput>(&in, 1), logits);
    got.insert(got.end(), logits.begin(), logits.end());
  }
  const size_t V = size_t(model->n_vocab());
  double max_diff = 0, max_vs_causal = 0;
  const auto causal = NaiveModel(*model->gguf).logits(ids, std::vector<int>(ids.size(), -1));
  for (size_t t = 0; t < ids.size(); ++t)
    for (size_t v = 0; v < V; ++v) {
      max_diff = std::max(max_diff, std::abs(got[t * V + v] - ref[t][v]));
      max_vs_causal = std::max(max_vs_causal, std::abs(ref[t][v] - causal[t][v]));
    }
  EXPECT_LE(max_diff, 1e-3);
  EXPECT_GT(max_vs_causal, 1e-2) << "the block mask must make a visible difference";
}

TEST(ForwardErrorsTest, BadInputsAreRejectedBeforeAnythingChanges) {
  test::TempDir dir;
  ThreadPool pool(2);
  const std::string path = (dir / "model.gguf").string();
  write_random_gemma4(RandomModelSpec{}, path, pool);
  const auto model = Gemma4Model::load(path);
  KvCache cache(model->hp, 8);
  ForwardPass forward(*model, pool, MatmulMode::kPrecise);
  std::vector<float> logits;
  SequenceInput in;
  in.cache = &cache;
  in.tokens = {2, 100000};
  EXPECT_THROW(forward.run(std::span<SequenceInput>(&in, 1), logits), Error);
  in.tokens = std::vector<int32_t>(9, 5);  // longer than the context
  try {
    forward.run(std::span<SequenceInput>(&in, 1), logits);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  in.tokens = {2, kSoftToken};  // soft token without embeddings
  EXPECT_THROW(forward.run(std::span<SequenceInput>(&in, 1), logits), Error);
  EXPECT_EQ(cache.n_past(), 0);
}

}  // namespace
}  // namespace g4

namespace g4 {
namespace {

// A sequence's logits do not depend on what else shares the forward pass, on how its prompt is
// chunked or on the thread count: batched serving must return exactly what a request gets alone.
// F32 weights, and Q4_0 / Q4_K ones (interleaved at load where the CPU has the kernel,
// ops/repack.h).
class ForwardBatchInvarianceTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(ForwardBatchInvarianceTest, BitIdenticalAloneBatchedChunkedAndAcrossThreadCounts) {
  test::TempDir dir;
  ThreadPool pool1(1), pool2(2);
  RandomModelSpec spec;  // tiny: window 8, so chunks cross the window
  spec.type = GetParam();
  const std::string path = (dir / "model.gguf").string();
  write_random_gemma4(spec, path, pool2);
  const auto model = Gemma4Model::load(path);
  // Interleaved where the kernels have a tile for the type and the rows make whole groups.
  const int group_rows = active_kernels().interleaved_group_rows(spec.type);
  for (const WeightMatrix* m : {&model->weights.layers[0].w_up, &model->weights.token_embd})
    EXPECT_EQ(m->interleaved_rows, group_rows > 0 && m->rows % group_rows == 0 ? group_rows : 1)
        << m->name;
  // The interleaved matrices share one buffer (model/weights.cpp), without overlapping.
  std::vector<std::pair<const uint8_t*, const uint8_t*>> spans;
  auto in_buffer = [&](const WeightMatrix& m) {
    if (m.interleaved_rows == 1) return;
    spans.emplace_back(m.data, m.data + m.rows * m.row_bytes);
    EXPECT_GE(m.data, model->interleaved.data()) << m.name;
    EXPECT_LE(spans.back().second, model->interleaved.data() + model->interleaved.size()) << m.name;
  };
  in_buffer(model->weights.token_embd);
  for (const LayerWeights& l : model->weights.layers)
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      in_buffer(*m);
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) EXPECT_LE(spans[i - 1].second, spans[i].first);
  const std::vector<int32_t> a = random_ids(30, spec.n_vocab, 1), b = random_ids(17, spec.n_vocab, 2);

  // Logits of every position of `ids`, fed in chunks, optionally alongside another sequence.
  auto run = [&](ThreadPool& pool, size_t chunk, const std::vector<int32_t>* other, MatmulMode mode) {
    KvCache cache(model->hp, KvCacheConfig{64}), other_cache(model->hp, KvCacheConfig{64});
    ForwardPass forward(*model, pool, mode);
    std::vector<float> all, logits;
    size_t other_pos = 0;
    for (size_t start = 0; start < a.size(); start += chunk) {
      std::vector<SequenceInput> inputs(1);
      inputs[0].cache = &cache;
      inputs[0].tokens.assign(a.begin() + std::ptrdiff_t(start), a.begin() + std::ptrdiff_t(std::min(a.size(), start + chunk)));
      for (size_t i = 0; i < inputs[0].tokens.size(); ++i) inputs[0].output_rows.push_back(int32_t(i));
      if (other && other_pos < other->size()) {
        SequenceInput o;
        o.cache = &other_cache;
        const size_t n = std::min<size_t>(7, other->size() - other_pos);
        o.tokens.assign(other->begin() + std::ptrdiff_t(other_pos), other->begin() + std::ptrdiff_t(other_pos + n));
        o.output_rows = {int32_t(n - 1)};
        other_pos += n;
        inputs.insert(inputs.begin(), std::move(o));  // the other sequence's rows come first
      }
      forward.run(inputs, logits);
      const size_t skip = inputs.size() == 2 ? size_t(model->n_vocab()) : 0;
      all.insert(all.end(), logits.begin() + std::ptrdiff_t(skip), logits.end());
    }
    return all;
  };
  for (MatmulMode mode : {MatmulMode::kPrecise, MatmulMode::kFast}) {
    const std::vector<float> alone = run(pool1, a.size(), nullptr, mode);
    EXPECT_EQ(run(pool2, a.size(), nullptr, mode), alone) << "thread count changed the result";
    EXPECT_EQ(run(pool2, 1, nullptr, mode), alone) << "token by token";
    EXPECT_EQ(run(pool2, 9, nullptr, mode), alone) << "chunks of 9";
    EXPECT_EQ(run(pool2, 9, &b, mode), alone) << "batched with another sequence";
    EXPECT_EQ(run(pool1, 4, &b, mode), alone) << "batched, one thread";
  }
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, ForwardBatchInvarianceTest,
                         ::testing::Values(GgmlType::F32, GgmlType::Q4_0, GgmlType::Q4_K),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

}  // namespace
}  // namespace g4
