#include "model/quantize_model.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "ops/quant.h"

namespace g4 {
namespace {

struct TargetRow {
  const char* name;
  GgmlType base;
  uint32_t file_type;
  bool more_bits_mix;
};

// file_type values are llama.cpp's llama_ftype (what general.file_type holds).
constexpr TargetRow kTargets[] = {
    {"Q8_0", GgmlType::Q8_0, 7, false}, {"Q4_0", GgmlType::Q4_0, 2, false},
    {"Q4_1", GgmlType::Q4_1, 3, false}, {"Q5_0", GgmlType::Q5_0, 8, false},
    {"Q5_1", GgmlType::Q5_1, 9, false}, {"Q4_K_M", GgmlType::Q4_K, 15, true},
    {"Q4_K", GgmlType::Q4_K, 15, true}, {"Q5_K_M", GgmlType::Q5_K, 17, true},
    {"Q5_K", GgmlType::Q5_K, 17, true}, {"Q6_K", GgmlType::Q6_K, 18, false},
    {"F16", GgmlType::F16, 1, false},   {"BF16", GgmlType::BF16, 32, false},
    {"F32", GgmlType::F32, 0, false},
};

// Input bytes encoded between two releases of the input pages.
constexpr size_t kQuantizeChunkBytes = size_t(64) << 20;

bool is_plain(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third in between.
bool use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::atoi(name.c_str() + 4);
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Rank of `layer` among the layers that have a tensor ending in `suffix`.
struct LayerRanks {
  std::vector<int> layers;  // sorted
  int rank(int layer) const {
    return int(std::lower_bound(layers.begin(), layers.end(), layer) - layers.begin());
  }
  int count() const { return int(layers.size()); }
};

LayerRanks ranks_of(const GgufFile& in, const char* suffix) {
  LayerRanks r;
  for (const GgufTensorInfo& t : in.tensors())
    if (ends_with(t.name, suffix) && layer_of(t.name) >= 0) r.layers.push_back(layer_of(t.name));
  std::sort(r.layers.begin(), r.layers.end());
  return r;
}

// The block-size fallbacks llama.cpp applies when a row is not a whole number of blocks.
GgmlType fit_rows(GgmlType type, int64_t cols, const std::string& name,
                  std::vector<std::string>* notes) {
  GgmlType t = type;
  if (cols % ggml_type_info(t).block_size != 0) {
    switch (t) {
      case GgmlType::Q4_K:
        t = GgmlType::Q5_0;
        break;
      case GgmlType::Q5_K:
        t = GgmlType::Q5_1;
        break;
      case GgmlType::Q6_K:
        t = GgmlType::Q8_0;
        break;
      default:
        break;
    }
    if (cols % ggml_type_info(t).block_size != 0) t = GgmlType::F16;
    if (notes)
      notes->push_back(cat(name, ": rows of ", cols, " are not a multiple of the ",
                           ggml_type_name(type), " block size ", ggml_type_info(type).block_size,
                           "; using ", ggml_type_name(t), " instead"));
  }
  return t;
}

}  // namespace

QuantizeTarget quantize_target_from_name(const std::string& name) {
  std::string upper = name;
  for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
  for (const TargetRow& row : kTargets)
    if (upper == row.name) return {row.name, row.base, row.file_type, row.more_bits_mix};
  std::string names;
  for (const std::string& n : quantize_target_names()) names += (names.empty() ? "" : ", ") + n;
  fail("unknown quantization type '", name, "' (expected one of ", names, ")");
}

std::vector<std::string> quantize_target_names() {
  std::vector<std::string> out;
  for (const TargetRow& row : kTargets) out.push_back(row.name);
  return out;
}

std::vector<QuantizeTensorPlan> plan_quantization(const GgufFile& in,
                                                  const QuantizeOptions& options,
                                                  std::vector<std::string>* notes) {
  const std::string arch = in.get_string_opt("general.architecture").value_or("");
  if (arch != "gemma4")
    fail(in.path(), ": general.architecture is '", arch,
         "'; quantize handles Gemma 4 text models (gemma4)",
         arch == "clip" ? " (projector files stay in F32/F16/BF16)" : "");
  const QuantizeTarget& target = options.target;
  const bool quantized_target = !is_plain(target.base);
  const bool mix = quantized_target && !options.pure;
  const bool tied_output = in.find_tensor("output.weight") == nullptr;
  const LayerRanks attn_v = ranks_of(in, "attn_v.weight");
  const LayerRanks ffn_down = ranks_of(in, "ffn_down.weight");

  std::vector<QuantizeTensorPlan> plans;
  for (const GgufTensorInfo& t : in.tensors()) {
    QuantizeTensorPlan p{t.name, t.type, t.type};
    // Only 2-D weights are re-encoded (llama.cpp's rule); norms and scalars keep their type.
    const bool matrix = t.n_dims >= 2 && ends_with(t.name, "weight");
    if (!matrix) {
      plans.push_back(p);
      continue;
    }
    GgmlType to = target.base;
    if (mix) {
      const bool output =
          t.name == "output.weight" || (tied_output && t.name == "token_embd.weight");
      if (output) {
        if (t.ne[0] % 256 != 0)
          to = GgmlType::Q8_0;
        else if (to != GgmlType::Q8_0)
          to = GgmlType::Q6_K;
      } else if (target.more_bits_mix && ends_with(t.name, "attn_v.weight")) {
        if (use_more_bits(attn_v.rank(layer_of(t.name)), attn_v.count())) to = GgmlType::Q6_K;
      } else if (target.more_bits_mix && ends_with(t.name, "ffn_down.weight")) {
        if (use_more_bits(ffn_down.rank(layer_of(t.name)), ffn_down.count())) to = GgmlType::Q6_K;
      }
    }
    to = fit_rows(to, t.ne[0], t.name, notes);
    if (to != t.type && !is_plain(t.type)) {
      if (!options.allow_requantize)
        fail(in.path(), ": tensor '", t.name, "' is already ", ggml_type_name(t.type),
             "; quantizing it again to ", ggml_type_name(to),
             " compounds the rounding errors. Start from the F32/F16/BF16 file, or pass "
             "--allow-requantize");
      if (notes)
        notes->push_back(
            cat(t.name, ": requantized from ", ggml_type_name(t.type), " to ", ggml_type_name(to)));
    }
    if (!type_is_supported(t.type))
      fail(in.path(), ": tensor '", t.name, "' has type ", ggml_type_name(t.type),
           ", which cannot be decoded");
    p.to = to;
    plans.push_back(p);
  }
  return plans;
}

QuantizeReport quantize_gguf(const std::string& in_path, const std::string& out_path,
                             const QuantizeOptions& options, ThreadPool& pool,
                             const TensorProgressFn& progress) {
  if (in_path == out_path) fail(out_path, ": the output must not be the input file");
  const GgufFile in = GgufFile::open(in_path);
  QuantizeReport report;
  const std::vector<QuantizeTensorPlan> plans = plan_quantization(in, options, &report.notes);

  GgufWriter w;
  for (const GgufKv& kv : in.metadata())
    if (kv.key != "general.file_type" && kv.key != "general.quantization_version")
      w.copy_kv(in, kv);
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", options.target.file_type);

  uint64_t total = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    const GgufTensorInfo& t = in.tensors()[i];
    report.bytes_in += t.n_bytes;
    total += uint64_t(t.n_elements() / t.ne[0]) * uint64_t(ggml_row_bytes(plans[i].to, t.ne[0]));
  }
  report.bytes_out = total;
  auto done = std::make_shared<uint64_t>(0);
  for (size_t i = 0; i < plans.size(); ++i) {
    const GgufTensorInfo& t = in.tensors()[i];
    const std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    w.add_tensor_streamed(t.name, plans[i].to, ne, [&, i, done](uint8_t* dst, size_t n_bytes) {
      const GgufTensorInfo& src = in.tensors()[i];
      const QuantizeTensorPlan& plan = plans[i];
      const int64_t cols = src.ne[0], rows = src.n_elements() / cols;
      const int64_t in_row = ggml_row_bytes(src.type, cols),
                    out_row = ggml_row_bytes(plan.to, cols);
      // Chunk by chunk, dropping the input pages behind: resident memory stays at the output
      // tensor plus one chunk of input, whatever the model size.
      const int64_t chunk = std::max<int64_t>(1, int64_t(kQuantizeChunkBytes) / in_row);
      for (int64_t c0 = 0; c0 < rows; c0 += chunk) {
        const int64_t c1 = std::min(rows, c0 + chunk);
        const uint8_t* in_rows = src.data + c0 * in_row;
        if (plan.to == src.type) {
          std::memcpy(dst + c0 * out_row, in_rows, size_t((c1 - c0) * in_row));
        } else {
          try {
            pool.parallel_for(c1 - c0, 1, [&](int64_t r0, int64_t r1, int) {
              std::vector<float> row(static_cast<size_t>(cols));
              for (int64_t r = c0 + r0; r < c0 + r1; ++r) {
                dequantize_row(src.type, src.data + r * in_row, row.data(), cols);
                quantize_row(plan.to, row.data(), dst + r * out_row, cols);
              }
            });
          } catch (const Error& e) {
            fail(in_path, ": tensor '", src.name, "' (", ggml_type_name(src.type), " -> ",
                 ggml_type_name(plan.to), "): ", e.what());
          }
        }
        release_mapped_pages(in_rows, size_t((c1 - c0) * in_row));
      }
      *done += n_bytes;
      if (progress) progress({out_path, src.name, int(i + 1), int(plans.size()), *done, total});
    });
  }
  w.write(out_path);
  report.n_tensors = int(plans.size());
  return report;
}

}  // namespace g4
