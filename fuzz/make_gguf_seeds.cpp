// Writes a few small valid GGUF files into a directory, as a seed corpus for gguf_fuzzer: the
// fuzzer then mutates real structure instead of rediscovering the format from nothing.
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/gguf.h"

namespace {

using g4::GgmlType;
using g4::GgufValueType;
using g4::GgufWriter;

void fill(uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = uint8_t(i * 37 + 11);
}

// [[1, 2], [3]] as an array of u32 arrays.
std::vector<uint8_t> nested_u32() {
  std::vector<uint8_t> out;
  const auto put = [&out](const auto& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(v));
  };
  put(uint32_t(GgufValueType::ARRAY));
  put(uint64_t(2));
  put(uint32_t(GgufValueType::U32));
  put(uint64_t(2));
  put(uint32_t(1));
  put(uint32_t(2));
  put(uint32_t(GgufValueType::U32));
  put(uint64_t(1));
  put(uint32_t(3));
  return out;
}

void write_model_like(const std::string& dir) {
  GgufWriter w;
  w.set_string("general.architecture", "gemma4");
  w.set_u32("gemma4.block_count", 2);
  w.set_u32_array("gemma4.attention.head_count_kv", {2, 1});
  w.set_bool_array("gemma4.attention.sliding_window_pattern", {true, false});
  w.set_f32("gemma4.rope.freq_base", 10000.0f);
  w.set_string_array("tokenizer.ggml.tokens", {"<pad>", "<eos>", "a",
                                               "\xE2\x96\x81"
                                               "b"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, -1, -2});
  w.set_i32_array("tokenizer.ggml.token_type", {3, 3, 1, 1});
  w.add_tensor_streamed("token_embd.weight", GgmlType::F32, {8, 4}, fill);
  w.add_tensor_streamed("blk.0.attn_q.weight", GgmlType::Q8_0, {32, 2}, fill);
  w.add_tensor_streamed("blk.0.ffn_up.weight", GgmlType::Q4_K, {256}, fill);
  w.add_tensor_streamed("output_norm.weight", GgmlType::F16, {16}, fill);
  w.write(dir + "/model_like.gguf");
}

void write_every_type_v2(const std::string& dir) {
  GgufWriter w;
  w.set_version(2);
  w.set_alignment(64);
  w.set_u8("u8", 1);
  w.set_i8("i8", -1);
  w.set_u16("u16", 2);
  w.set_i16("i16", -2);
  w.set_i32("i32", -3);
  w.set_u64("u64", 4);
  w.set_i64("i64", -4);
  w.set_f64("f64", 0.5);
  w.set_bool("bool", true);
  w.set_string("str", "text");
  w.set_u8_array("u8s", {1, 2});
  w.set_i64_array("i64s", {-1});
  w.set_f64_array("f64s", {1.5});
  w.set_encoded("nested", GgufValueType::ARRAY, nested_u32());
  w.add_tensor_streamed("scalar", GgmlType::F32, {}, fill);
  w.add_tensor_streamed("q6", GgmlType::Q6_K, {256, 1, 1, 1}, fill);
  w.write(dir + "/every_type_v2.gguf");
}

void write_vocab_only(const std::string& dir) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gemma4");
  w.set_string_array("tokenizer.ggml.merges", {"a b", "\xE2\x96\x81 t"});
  w.set_u32("tokenizer.ggml.bos_token_id", 2);
  w.write(dir + "/vocab_only.gguf");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <existing output directory>\n", argv[0]);
    return 2;
  }
  try {
    write_model_like(argv[1]);
    write_every_type_v2(argv[1]);
    write_vocab_only(argv[1]);
  } catch (const g4::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
