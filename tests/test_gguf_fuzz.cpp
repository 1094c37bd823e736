// Robustness of the GGUF reader against damaged and hostile files: every truncation, thousands of
// deterministic random mutations, and targeted hostile values. Every input must either load (and
// then be safe to use in full) or throw g4::Error; nothing may crash, hang or over-allocate.
// Re-run under ASan + UBSan by scripts/test.sh.
#include <random>

#include "../fuzz/gguf_touch.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "gguf_test_bytes.h"
#include "test_util.h"

namespace g4 {
namespace {

using test::GgufBytes;
using test::TempDir;

constexpr const char* kName = "fuzz.gguf";

// Encodes [["x", "y"], []] (an array of string arrays).
std::vector<uint8_t> nested_strings() {
  GgufBytes b;
  b.type(GgufValueType::ARRAY).u64(2);
  b.type(GgufValueType::STRING).u64(2).str("x").str("y");
  b.type(GgufValueType::STRING).u64(0);
  return b.bytes;
}

// A small valid file with values of several types and four tensors of different types. The last
// tensor's size is a multiple of the alignment, so the file has no trailing padding and every
// proper prefix of it is a truncated file.
std::vector<uint8_t> sample_file_bytes() {
  GgufWriter w;
  w.set_string("general.architecture", "gemma4");
  w.set_u32("gemma4.block_count", 2);
  w.set_f32("gemma4.rope.freq_base", 10000.0f);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_i64("test.i64", -3);
  w.set_f64("test.f64", 0.125);
  w.set_u16("test.u16", 513);
  w.set_string_array("tokenizer.ggml.tokens", {"<pad>", "a",
                                               "\xE2\x96\x81"
                                               "b"});
  w.set_encoded("test.nested", GgufValueType::ARRAY, nested_strings());
  w.set_bool_array("test.bools", {true, false});
  w.set_i32_array("test.i32s", {2, -1});
  w.set_f32_array("test.f32s", {0.5f});
  const auto fill = [](uint8_t seed) {
    return [seed](uint8_t* dst, size_t n) {
      for (size_t i = 0; i < n; ++i) dst[i] = uint8_t(seed ^ (i * 13));
    };
  };
  w.add_tensor_streamed("tok", GgmlType::F32, {8, 2}, fill(1));   // 64 bytes
  w.add_tensor_streamed("q8", GgmlType::Q8_0, {32, 2}, fill(2));  // 68 bytes
  w.add_tensor_streamed("q4k", GgmlType::Q4_K, {256}, fill(3));   // 144 bytes
  w.add_tensor_streamed("half", GgmlType::F16, {16}, fill(4));    // 32 bytes, last
  TempDir dir;
  const std::filesystem::path path = dir / kName;
  w.write(path.string());
  return test::read_file_bytes(path);
}

GgufFile load(const std::vector<uint8_t>& bytes, size_t size) {
  return GgufFile::from_bytes(bytes.data(), size, kName);
}

GgufFile load(const GgufBytes& b) {
  return GgufFile::from_bytes(b.bytes.data(), b.bytes.size(), kName);
}

// Whatever the reader accepts, the writer must accept too (they share the value validation).
void copy_every_kv(const GgufFile& file) {
  GgufWriter writer;
  for (const GgufKv& kv : file.metadata())
    if (!kv.key.empty()) writer.copy_kv(file, kv);
}

template <class Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no g4::Error thrown>";
}

#define EXPECT_ERROR_HAS(stmt, ...)                                   \
  do {                                                                \
    const std::string g4_message_ = error_message([&] { stmt; });     \
    for (const char* g4_part_ : {__VA_ARGS__})                        \
      EXPECT_NE(g4_message_.find(g4_part_), std::string::npos)        \
          << "message: " << g4_message_ << "\nmissing: " << g4_part_; \
  } while (0)

TEST(GgufFuzz, SampleLoadsAndIsFullyUsable) {
  const std::vector<uint8_t> bytes = sample_file_bytes();
  const GgufFile f = load(bytes, bytes.size());
  EXPECT_EQ(f.metadata().size(), 12u);
  EXPECT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.tensor("half").offset + f.tensor("half").n_bytes + f.data_offset(), bytes.size());
  EXPECT_EQ(f.value_to_string(*f.find("test.nested")), "[[\"x\", \"y\"], []]");
  EXPECT_GT(fuzz::touch_everything(f), 0u);
  copy_every_kv(f);
}

TEST(GgufFuzz, EveryTruncationThrows) {
  const std::vector<uint8_t> bytes = sample_file_bytes();
  for (size_t size = 0; size < bytes.size(); ++size) {
    const std::string message = error_message([&] { load(bytes, size); });
    ASSERT_NE(message.find(kName), std::string::npos) << "size " << size << ": " << message;
    if (size > 0) {
      ASSERT_NE(message.find("truncated"), std::string::npos) << "size " << size << ": " << message;
    }
  }
}

TEST(GgufFuzz, TruncatedFileOnDiskThrows) {
  const std::vector<uint8_t> bytes = sample_file_bytes();
  TempDir dir;
  const std::filesystem::path path = dir / "cut.gguf";
  test::write_file_bytes(path, std::vector<uint8_t>(bytes.begin(), bytes.end() - 1));
  EXPECT_ERROR_HAS(GgufFile::open(path.string()), "cut.gguf", "tensor 'half'", "truncated");
}

// Deterministic mutations: byte flips anywhere (mostly in the header, where they matter) and
// "interesting" 32/64-bit values written over counts, lengths, types and offsets.
TEST(GgufFuzz, RandomMutationsLoadOrThrow) {
  const std::vector<uint8_t> original = sample_file_bytes();
  const size_t header_size = load(original, original.size()).data_offset();
  constexpr uint64_t kInteresting[] = {0,
                                       1,
                                       3,
                                       5,
                                       7,
                                       8,
                                       13,
                                       200,
                                       0x7f,
                                       0x80,
                                       0xff,
                                       0xffff,
                                       0x7fffffff,
                                       0x80000000,
                                       0xffffffff,
                                       uint64_t(1) << 32,
                                       uint64_t(1) << 62,
                                       uint64_t(1) << 63,
                                       ~uint64_t(0),
                                       ~uint64_t(0) - 31};
  std::mt19937_64 rng(0x6767756675757a7a);  // fixed seed: every run tests the same inputs
  constexpr int kMutations = 6000;
  int loaded = 0;
  int rejected = 0;
  for (int m = 0; m < kMutations; ++m) {
    std::vector<uint8_t> bytes = original;
    const size_t region = rng() % 5 == 0 ? bytes.size() : header_size;
    const int n_edits = 1 + int(rng() % 3);
    for (int e = 0; e < n_edits; ++e) {
      const size_t pos = rng() % region;
      if (rng() % 2 == 0) {
        bytes[pos] ^= uint8_t(1 + rng() % 255);
      } else {
        const uint64_t value = kInteresting[rng() % std::size(kInteresting)];
        const size_t width = rng() % 2 == 0 ? 4 : 8;
        std::memcpy(bytes.data() + pos, &value, std::min(width, bytes.size() - pos));
      }
    }
    try {
      const GgufFile f = load(bytes, bytes.size());
      fuzz::touch_everything(f);
      copy_every_kv(f);
      ++loaded;
    } catch (const Error&) {
      ++rejected;  // anything other than g4::Error escapes and fails the test
    }
  }
  // Both outcomes must occur, or the mutations are not reaching the parser.
  EXPECT_GT(loaded, kMutations / 20);
  EXPECT_GT(rejected, kMutations / 4);
  std::printf("[          ] %d mutations: %d loaded, %d rejected\n", kMutations, loaded, rejected);
}

TEST(GgufFuzz, HostileLengthsAndCounts) {
  GgufBytes string_length;
  string_length.header(0, 1).str("k").type(GgufValueType::STRING).u64(uint64_t(1) << 63);
  EXPECT_ERROR_HAS(load(string_length), kName, "'k'", "length 9223372036854775808", "exceeds");

  GgufBytes key_length;
  key_length.header(0, 1).u64(uint64_t(1) << 63).raw("abcdefgh");
  EXPECT_ERROR_HAS(load(key_length), kName, "metadata entry 0 of 1", "key length");

  for (const GgufValueType element :
       {GgufValueType::U32, GgufValueType::STRING, GgufValueType::ARRAY}) {
    GgufBytes array_count;
    array_count.header(0, 1).str("arr").type(GgufValueType::ARRAY).type(element);
    array_count.u64(uint64_t(1) << 62).zeros(64);
    EXPECT_ERROR_HAS(load(array_count), "'arr'", "array of 4611686018427387904",
                     gguf_value_type_name(element));
  }

  GgufBytes tensor_count;
  tensor_count.header(uint64_t(1) << 60, 0).zeros(256);
  EXPECT_ERROR_HAS(load(tensor_count), "claims 1152921504606846976 tensors");

  GgufBytes kv_count;
  kv_count.header(0, ~uint64_t(0)).zeros(256);
  EXPECT_ERROR_HAS(load(kv_count), "claims 18446744073709551615 metadata entries");

  // The tensor count is checked again against what is left after the metadata.
  GgufBytes late_count;
  late_count.header(4, 1).str("pad").type(GgufValueType::ARRAY).type(GgufValueType::U8).u64(80);
  late_count.zeros(80);
  EXPECT_ERROR_HAS(load(late_count), "claims 4 tensors", "follow the metadata");
}

GgufBytes tensor_file(std::vector<uint64_t> dims, uint32_t type_id, uint64_t offset,
                      size_t data_bytes = 64) {
  GgufBytes b;
  b.header(1, 0).tensor_info("w", std::move(dims), type_id, offset).pad_to(32).zeros(data_bytes);
  return b;
}

TEST(GgufFuzz, HostileTensorInfos) {
  const uint32_t f32 = uint32_t(GgmlType::F32);
  EXPECT_ERROR_HAS(load(tensor_file({1, 1, 1, 1, 1}, f32, 0)), "tensor 'w'", "5 dimensions");
  GgufBytes many_dims;
  many_dims.header(1, 0).str("w").u32(0xffffffff).zeros(64);
  EXPECT_ERROR_HAS(load(many_dims), "tensor 'w'", "4294967295 dimensions");
  EXPECT_ERROR_HAS(load(tensor_file({uint64_t(1) << 32, uint64_t(1) << 32}, f32, 0)), "tensor 'w'",
                   "product of the dimensions overflows");
  EXPECT_ERROR_HAS(load(tensor_file({uint64_t(1) << 63}, f32, 0)),
                   "dimension 0 is 9223372036854775808");
  EXPECT_ERROR_HAS(load(tensor_file({uint64_t(1) << 62}, f32, 0)), "tensor 'w'",
                   "byte size overflows");
  EXPECT_ERROR_HAS(load(tensor_file({16}, f32, 32)), "tensor 'w'", "data offset 32",
                   "runs past the end of the file");
  EXPECT_ERROR_HAS(load(tensor_file({16}, f32, ~uint64_t(0) - 31)), "tensor 'w'",
                   "runs past the end");
  EXPECT_ERROR_HAS(load(tensor_file({4}, f32, 4)), "tensor 'w'", "data offset 4",
                   "not a multiple of the alignment 32");
  EXPECT_ERROR_HAS(load(tensor_file({4}, 200, 0)), "tensor 'w'", "unknown ggml type id 200");
  EXPECT_ERROR_HAS(load(tensor_file({4}, 4, 0)), "unknown ggml type id 4");  // Q4_2: removed
}

TEST(GgufFuzz, HostileValueTypes) {
  GgufBytes value_type;
  value_type.header(0, 1).str("k").u32(13).u64(0);
  EXPECT_ERROR_HAS(load(value_type), "'k'", "unknown value type 13");
  GgufBytes element_type;
  element_type.header(0, 1).str("k").type(GgufValueType::ARRAY).u32(13).u64(1).u64(0);
  EXPECT_ERROR_HAS(load(element_type), "'k'", "unknown array element type 13");

  const auto nested = [](int depth) {
    GgufBytes b;
    b.header(0, 1).str("deep").type(GgufValueType::ARRAY);
    for (int i = 1; i < depth; ++i) b.type(GgufValueType::ARRAY).u64(1);
    b.type(GgufValueType::U8).u64(1).u8(42);
    return b;
  };
  const GgufFile ok = load(nested(kGgufMaxArrayNesting));
  EXPECT_EQ(ok.value_to_string(*ok.find("deep")), "[[[[[[[[42]]]]]]]]");
  EXPECT_ERROR_HAS(load(nested(kGgufMaxArrayNesting + 1)), "'deep'", "nested 9 deep");
}

TEST(GgufFuzz, HostileAlignment) {
  const auto with_alignment = [](uint32_t alignment) {
    GgufBytes b;
    b.header(1, 1).kv_u32("general.alignment", alignment);
    b.tensor_info("w", {4}, 0, 0).pad_to(64).zeros(64);
    return b;
  };
  for (const uint32_t bad : {0u, 3u, 4u, 24u, 0xffffffffu}) {
    const std::string expected = cat("general.alignment is ", bad);
    EXPECT_ERROR_HAS(load(with_alignment(bad)), kName, expected.c_str(), "power of two");
  }
  EXPECT_EQ(load(with_alignment(64)).alignment(), 64u);
  // Valid but huge: the padding runs past the end of the file.
  EXPECT_ERROR_HAS(load(with_alignment(0x80000000u)), "truncated",
                   "data section starts at 2147483648");
}

}  // namespace
}  // namespace g4
