// GGUF reader and writer: round trips of every value and array type (v2 and v3), alignment,
// streamed tensors, getter errors, structural validation, and the reference fixture files.
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/gguf.h"
#include "gguf_test_bytes.h"
#include "test_util.h"

namespace g4 {
namespace {

using test::GgufBytes;
using test::TempDir;

GgufFile write_and_open(const GgufWriter& writer, const TempDir& dir,
                        const std::string& name = "out.gguf") {
  const std::string path = (dir / name).string();
  writer.write(path);
  return GgufFile::open(path);
}

GgufFile open_bytes(const GgufBytes& b, const std::string& name = "hand.gguf") {
  return GgufFile::from_bytes(b.bytes.data(), b.bytes.size(), name);
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

// Expects `stmt` to throw g4::Error whose message contains every one of the given parts.
#define EXPECT_ERROR_HAS(stmt, ...)                                   \
  do {                                                                \
    const std::string g4_message_ = error_message([&] { stmt; });     \
    for (const char* g4_part_ : {__VA_ARGS__})                        \
      EXPECT_NE(g4_message_.find(g4_part_), std::string::npos)        \
          << "message: " << g4_message_ << "\nmissing: " << g4_part_; \
  } while (0)

std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = uint8_t(seed + i * 7);
  return out;
}

// Encodes an array of u32 arrays: [[1, 2], [3]] -> elem ARRAY, count, then each inner array.
std::vector<uint8_t> encode_nested_u32(const std::vector<std::vector<uint32_t>>& outer) {
  GgufBytes b;
  b.type(GgufValueType::ARRAY).u64(outer.size());
  for (const auto& inner : outer) {
    b.type(GgufValueType::U32).u64(inner.size());
    for (uint32_t v : inner) b.u32(v);
  }
  return b.bytes;
}

// --- round trips -------------------------------------------------------------------------

class GgufRoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufRoundTrip, ScalarsOfEveryType) {
  TempDir dir;
  GgufWriter w;
  w.set_version(GetParam());
  w.set_u8("t.u8", 255);
  w.set_i8("t.i8", -128);
  w.set_u16("t.u16", 65535);
  w.set_i16("t.i16", -32768);
  w.set_u32("t.u32", 4294967295u);
  w.set_i32("t.i32", std::numeric_limits<int32_t>::min());
  w.set_u64("t.u64", std::numeric_limits<uint64_t>::max());
  w.set_i64("t.i64", std::numeric_limits<int64_t>::min());
  w.set_f32("t.f32", 3.25f);
  w.set_f64("t.f64", 1e-300);
  w.set_bool("t.true", true);
  w.set_bool("t.false", false);
  w.set_string("t.empty", "");
  w.set_string("t.utf8", "h\xC3\xA9llo \xE2\x9C\x93");
  w.set_string("t.nul", std::string("a\0b", 3));
  const GgufFile f = write_and_open(w, dir);

  EXPECT_EQ(f.version(), GetParam());
  EXPECT_EQ(f.alignment(), kGgufDefaultAlignment);
  EXPECT_TRUE(f.tensors().empty());
  const std::vector<std::pair<std::string, GgufValueType>> expected = {
      {"t.u8", GgufValueType::U8},        {"t.i8", GgufValueType::I8},
      {"t.u16", GgufValueType::U16},      {"t.i16", GgufValueType::I16},
      {"t.u32", GgufValueType::U32},      {"t.i32", GgufValueType::I32},
      {"t.u64", GgufValueType::U64},      {"t.i64", GgufValueType::I64},
      {"t.f32", GgufValueType::F32},      {"t.f64", GgufValueType::F64},
      {"t.true", GgufValueType::BOOL},    {"t.false", GgufValueType::BOOL},
      {"t.empty", GgufValueType::STRING}, {"t.utf8", GgufValueType::STRING},
      {"t.nul", GgufValueType::STRING},
  };
  ASSERT_EQ(f.metadata().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, expected[i].first);
    EXPECT_EQ(f.metadata()[i].type, expected[i].second) << expected[i].first;
  }
  EXPECT_EQ(f.get_uint("t.u8"), 255u);
  EXPECT_EQ(f.get_int("t.u8"), 255);
  EXPECT_EQ(f.get_int("t.i8"), -128);
  EXPECT_EQ(f.get_uint("t.u16"), 65535u);
  EXPECT_EQ(f.get_int("t.i16"), -32768);
  EXPECT_EQ(f.get_uint("t.u32"), 4294967295u);
  EXPECT_EQ(f.get_int("t.i32"), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(f.get_uint("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.get_int("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get_float("t.f32"), 3.25);
  EXPECT_EQ(f.get_float("t.f64"), 1e-300);
  EXPECT_TRUE(f.get_bool("t.true"));
  EXPECT_FALSE(f.get_bool("t.false"));
  EXPECT_EQ(f.get_string("t.empty"), "");
  EXPECT_EQ(f.get_string("t.utf8"), "h\xC3\xA9llo \xE2\x9C\x93");
  EXPECT_EQ(f.get_string("t.nul"), std::string("a\0b", 3));
  EXPECT_EQ(f.get_string_view("t.utf8"), "h\xC3\xA9llo \xE2\x9C\x93");

  EXPECT_EQ(f.value_to_string(*f.find("t.u64")), "18446744073709551615");
  EXPECT_EQ(f.value_to_string(*f.find("t.i8")), "-128");
  EXPECT_EQ(f.value_to_string(*f.find("t.f32")), "3.25");
  EXPECT_EQ(f.value_to_string(*f.find("t.true")), "true");
  EXPECT_EQ(f.value_to_string(*f.find("t.utf8")), "\"h\xC3\xA9llo \xE2\x9C\x93\"");
  EXPECT_EQ(f.value_to_string(*f.find("t.nul")), "\"a\\x00b\"");
}

TEST_P(GgufRoundTrip, ArraysOfEveryType) {
  TempDir dir;
  GgufWriter w;
  w.set_version(GetParam());
  w.set_u8_array("a.u8", {0, 255});
  w.set_i8_array("a.i8", {-128, 127});
  w.set_u16_array("a.u16", {0, 65535});
  w.set_i16_array("a.i16", {-32768, 32767});
  w.set_u32_array("a.u32", {0, 4294967295u});
  w.set_i32_array("a.i32", {std::numeric_limits<int32_t>::min(), 7});
  w.set_u64_array("a.u64", {0, uint64_t(1) << 40});
  w.set_i64_array("a.i64",
                  {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()});
  w.set_f32_array("a.f32", {1.5f, -2.0f});
  w.set_f64_array("a.f64", {0.1, -1e300});
  w.set_bool_array("a.bool", {true, false, true});
  w.set_string_array("a.str", {"", "a", "\xE2\x9C\x93"});
  w.set_u32_array("a.empty", {});
  w.set_string_array("a.empty_str", {});
  w.set_encoded("a.nested", GgufValueType::ARRAY, encode_nested_u32({{1, 2}, {3}, {}}));
  const GgufFile f = write_and_open(w, dir);

  const GgufKv& u16 = *f.find("a.u16");
  EXPECT_EQ(u16.type, GgufValueType::ARRAY);
  EXPECT_EQ(u16.array_type, GgufValueType::U16);
  EXPECT_EQ(u16.array_count, 2u);
  EXPECT_EQ(f.get_int_array("a.u8"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(f.get_int_array("a.i8"), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(f.get_int_array("a.u16"), (std::vector<int64_t>{0, 65535}));
  EXPECT_EQ(f.get_int_array("a.i16"), (std::vector<int64_t>{-32768, 32767}));
  EXPECT_EQ(f.get_int_array("a.u32"), (std::vector<int64_t>{0, 4294967295}));
  EXPECT_EQ(f.get_int_array("a.i32"),
            (std::vector<int64_t>{std::numeric_limits<int32_t>::min(), 7}));
  EXPECT_EQ(f.get_int_array("a.u64"), (std::vector<int64_t>{0, int64_t(1) << 40}));
  EXPECT_EQ(f.get_int_array("a.i64"), (std::vector<int64_t>{std::numeric_limits<int64_t>::min(),
                                                            std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(f.get_float_array("a.f32"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(f.get_float_array("a.f64"), (std::vector<float>{0.1f, -INFINITY}));
  EXPECT_EQ(f.get_bool_array("a.bool"), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.get_string_array("a.str"), (std::vector<std::string>{"", "a", "\xE2\x9C\x93"}));
  EXPECT_TRUE(f.get_int_array("a.empty").empty());
  EXPECT_TRUE(f.get_string_array("a.empty_str").empty());

  const GgufKv& nested = *f.find("a.nested");
  EXPECT_EQ(nested.array_type, GgufValueType::ARRAY);
  EXPECT_EQ(nested.array_count, 3u);
  EXPECT_EQ(f.value_to_string(nested), "[[1, 2], [3], []]");
  EXPECT_ERROR_HAS(f.get_int_array("a.nested"), "out.gguf", "'a.nested'", "array of array",
                   "expected array of integers");
  EXPECT_EQ(f.value_to_string(*f.find("a.str")), "[\"\", \"a\", \"\xE2\x9C\x93\"]");
  EXPECT_EQ(f.value_to_string(*f.find("a.bool"), 2), "[true, false, ... (3 items)]");
  EXPECT_EQ(f.value_to_string(*f.find("a.empty")), "[]");
}

TEST_P(GgufRoundTrip, TensorsAtAlignedOffsets) {
  for (const uint32_t alignment : {8u, 32u, 64u, 4096u}) {
    SCOPED_TRACE(alignment);
    TempDir dir;
    GgufWriter w;
    w.set_version(GetParam());
    w.set_alignment(alignment);
    w.set_string("general.architecture", "test");
    struct Spec {
      std::string name;
      GgmlType type;
      std::vector<int64_t> ne;
      size_t n_bytes;
    };
    const std::vector<Spec> specs = {
        {"f32", GgmlType::F32, {3, 2}, 24},   {"f16", GgmlType::F16, {5}, 10},
        {"q8", GgmlType::Q8_0, {64, 2}, 136}, {"q4k", GgmlType::Q4_K, {256, 1, 1, 2}, 288},
        {"scalar", GgmlType::F32, {}, 4},     {"i32", GgmlType::I32, {7}, 28},
    };
    std::vector<std::vector<uint8_t>> contents;
    for (size_t i = 0; i < specs.size(); ++i) {
      contents.push_back(pattern_bytes(specs[i].n_bytes, uint8_t(i * 31)));
      w.add_tensor(specs[i].name, specs[i].type, specs[i].ne, contents.back().data(),
                   contents.back().size());
    }
    const GgufFile f = write_and_open(w, dir);
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.has("general.alignment"), alignment != kGgufDefaultAlignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    ASSERT_EQ(f.tensors().size(), specs.size());
    uint64_t expected_offset = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
      const GgufTensorInfo& t = f.tensors()[i];
      EXPECT_EQ(t.name, specs[i].name);
      EXPECT_EQ(t.type, specs[i].type);
      EXPECT_EQ(t.n_dims, int(specs[i].ne.size()));
      for (size_t d = 0; d < specs[i].ne.size(); ++d) EXPECT_EQ(t.ne[d], specs[i].ne[d]);
      EXPECT_EQ(t.n_bytes, specs[i].n_bytes);
      EXPECT_EQ(t.offset, expected_offset);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % alignment, 0u) << t.name;
      EXPECT_EQ(std::memcmp(t.data, contents[i].data(), t.n_bytes), 0) << t.name;
      EXPECT_EQ(&f.tensor(t.name), &t);
      expected_offset = (expected_offset + t.n_bytes + alignment - 1) / alignment * alignment;
    }
    EXPECT_EQ(f.file_size(), f.data_offset() + expected_offset);  // the last one is padded too
    EXPECT_EQ(f.tensor("q4k").shape_string(), "[256, 1, 1, 2]");
    EXPECT_EQ(f.tensor("q4k").n_elements(), 512);
    EXPECT_EQ(f.tensor("scalar").shape_string(), "[]");
    EXPECT_EQ(f.tensor("scalar").n_elements(), 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, GgufRoundTrip, ::testing::Values(2u, 3u),
                         [](const auto& info) { return cat("v", info.param); });

// --- writer ------------------------------------------------------------------------------

TEST(GgufWriter, StreamedTensorsAreProducedOnceInOrderWithZeroedBuffers) {
  TempDir dir;
  GgufWriter w;
  std::vector<std::string> calls;
  const auto producer = [&](const std::string& name, uint8_t seed) {
    return [&calls, name, seed](uint8_t* dst, size_t n) {
      for (size_t i = 0; i < n; ++i)
        if (dst[i] != 0) throw Error("buffer not zeroed for " + name);
      calls.push_back(cat(name, ":", n));
      const std::vector<uint8_t> bytes = pattern_bytes(n, seed);
      std::memcpy(dst, bytes.data(), n);
    };
  };
  w.add_tensor_streamed("big", GgmlType::F32, {1000, 3}, producer("big", 1));
  const std::vector<uint8_t> small = pattern_bytes(64, 9);
  w.add_tensor("mem", GgmlType::F16, {32}, small.data(), small.size());
  w.add_tensor_streamed("q", GgmlType::Q6_K, {256, 2}, producer("q", 5));
  EXPECT_TRUE(calls.empty());  // nothing is produced before write()
  const GgufFile f = write_and_open(w, dir);
  EXPECT_EQ(calls, (std::vector<std::string>{"big:12000", "q:420"}));
  EXPECT_EQ(std::memcmp(f.tensor("big").data, pattern_bytes(12000, 1).data(), 12000), 0);
  EXPECT_EQ(std::memcmp(f.tensor("mem").data, small.data(), 64), 0);
  EXPECT_EQ(std::memcmp(f.tensor("q").data, pattern_bytes(420, 5).data(), 420), 0);
}

TEST(GgufWriter, KeysKeepInsertionOrderAndSettingTwiceReplacesInPlace) {
  TempDir dir;
  GgufWriter w;
  w.set_u32("a", 1);
  w.set_u32("b", 2);
  w.set_u32("c", 3);
  w.set_string("b", "two");
  w.remove_key("a");
  w.remove_key("not-there");
  w.set_u32("d", 4);
  EXPECT_TRUE(w.has_key("b"));
  EXPECT_FALSE(w.has_key("a"));
  const GgufFile f = write_and_open(w, dir);
  ASSERT_EQ(f.metadata().size(), 3u);
  EXPECT_EQ(f.metadata()[0].key, "b");
  EXPECT_EQ(f.metadata()[1].key, "c");
  EXPECT_EQ(f.metadata()[2].key, "d");
  EXPECT_EQ(f.get_string("b"), "two");
  EXPECT_EQ(f.get_int("d"), 4);
}

TEST(GgufWriter, AlignmentIsTheGeneralAlignmentKey) {
  GgufWriter w;
  w.set_alignment(32);
  EXPECT_FALSE(w.has_key("general.alignment"));  // the default needs no key
  w.set_alignment(16);
  EXPECT_EQ(w.alignment(), 16u);
  w.set_u32("general.alignment", 64);
  EXPECT_EQ(w.alignment(), 64u);
  w.set_alignment(32);  // present now, so it is kept (explicitly 32)
  EXPECT_TRUE(w.has_key("general.alignment"));
  EXPECT_EQ(w.alignment(), 32u);
  for (const uint32_t bad : {0u, 3u, 4u, 12u, 24u, 0x80000001u})
    EXPECT_ERROR_HAS(w.set_alignment(bad), "alignment", "power of two");
  EXPECT_ERROR_HAS(w.set_u32("general.alignment", 24), "general.alignment");
  EXPECT_ERROR_HAS(w.set_u64("general.alignment", 64), "general.alignment", "u32");
  EXPECT_EQ(w.alignment(), 32u);  // failed sets change nothing
}

TEST(GgufWriter, RejectsInvalidTensors) {
  GgufWriter w;
  const std::vector<uint8_t> bytes(4096);
  w.add_tensor("x", GgmlType::F32, {4}, bytes.data(), 16);
  EXPECT_ERROR_HAS(w.add_tensor("x", GgmlType::F32, {4}, bytes.data(), 16), "'x'", "twice");
  EXPECT_ERROR_HAS(w.add_tensor("y", GgmlType::F32, {4}, bytes.data(), 12), "'y'", "12 bytes",
                   "needs 16");
  EXPECT_ERROR_HAS(w.add_tensor("y", GgmlType::F32, {1, 1, 1, 1, 1}, bytes.data(), 4),
                   "5 dimensions");
  EXPECT_ERROR_HAS(w.add_tensor("y", GgmlType::F32, {4, 0}, bytes.data(), 0), "dimension 1 is 0");
  EXPECT_ERROR_HAS(w.add_tensor("y", GgmlType::F32, {-4}, bytes.data(), 16), "dimension 0 is -4");
  EXPECT_ERROR_HAS(w.add_tensor("y", GgmlType::Q4_K, {128}, bytes.data(), 72), "'y'", "128",
                   "Q4_K block size 256");
  EXPECT_ERROR_HAS(w.add_tensor("y", GgmlType(200), {4}, bytes.data(), 4),
                   "unknown ggml type id 200");
  EXPECT_ERROR_HAS(w.add_tensor(std::string(64, 'n'), GgmlType::F32, {4}, bytes.data(), 16),
                   "64 bytes");
  EXPECT_ERROR_HAS(w.add_tensor("", GgmlType::F32, {4}, bytes.data(), 16), "empty tensor name");
  EXPECT_ERROR_HAS(w.add_tensor_streamed("z", GgmlType::F32, {4}, nullptr), "'z'", "no producer");
  EXPECT_ERROR_HAS(
      w.add_tensor_streamed("z", GgmlType::F32, {int64_t(1) << 62, 2}, [](uint8_t*, size_t) {}),
      "overflows");
  EXPECT_ERROR_HAS(w.set_version(1), "version 1");
  EXPECT_ERROR_HAS(w.set_version(4), "version 4");
  EXPECT_ERROR_HAS(w.set_u32("", 1), "empty metadata key");
}

TEST(GgufWriter, RejectsMalformedEncodedValues) {
  GgufWriter w;
  GgufBytes long_string;
  long_string.u64(10).raw("abc");
  EXPECT_ERROR_HAS(w.set_encoded("k", GgufValueType::STRING, long_string.bytes), "'k'",
                   "length 10");
  GgufBytes trailing;
  trailing.u32(5).u8(0);
  EXPECT_ERROR_HAS(w.set_encoded("k", GgufValueType::U32, trailing.bytes), "1 bytes left over");
  EXPECT_ERROR_HAS(w.set_encoded("k", GgufValueType::BOOL, {2}), "bool value 2");
  EXPECT_ERROR_HAS(w.set_encoded("k", GgufValueType(13), {0}), "unknown value type 13");
  GgufBytes deep;
  for (int i = 0; i < kGgufMaxArrayNesting; ++i) deep.type(GgufValueType::ARRAY).u64(1);
  deep.type(GgufValueType::U8).u64(0);
  EXPECT_ERROR_HAS(w.set_encoded("k", GgufValueType::ARRAY, deep.bytes), "nested");
  EXPECT_FALSE(w.has_key("k"));
}

TEST(GgufWriter, FailedWriteKeepsThePreviousFileAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = (dir / "model.gguf").string();
  GgufWriter good;
  good.set_string("general.architecture", "first");
  good.write(path);
  const std::vector<uint8_t> before = test::read_file_bytes(path);

  GgufWriter bad;
  bad.set_string("general.architecture", "second");
  bad.add_tensor_streamed("t", GgmlType::F32, {4},
                          [](uint8_t*, size_t) { throw Error("producer failed"); });
  EXPECT_ERROR_HAS(bad.write(path), "producer failed");
  EXPECT_EQ(test::read_file_bytes(path), before);
  size_t n_files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ++n_files;
  EXPECT_EQ(n_files, 1u);  // no temporary left behind

  EXPECT_ERROR_HAS(good.write((dir / "missing-dir" / "x.gguf").string()), "missing-dir",
                   "cannot create");
}

TEST(GgufWriter, CopyKvCopiesEveryKindOfValue) {
  TempDir dir;
  GgufWriter w;
  w.set_string_array("s", {"x", "", "yz"});
  w.set_encoded("n", GgufValueType::ARRAY, encode_nested_u32({{7}, {8, 9}}));
  w.set_f64("d", 2.5);
  w.set_bool_array("b", {false, true});
  const GgufFile source = write_and_open(w, dir, "source.gguf");
  GgufWriter copy;
  for (const GgufKv& kv : source.metadata()) copy.copy_kv(source, kv);
  const GgufFile f = write_and_open(copy, dir, "copy.gguf");
  EXPECT_EQ(test::read_file_bytes(dir / "copy.gguf"), test::read_file_bytes(dir / "source.gguf"));
  EXPECT_EQ(f.get_string_array("s"), (std::vector<std::string>{"x", "", "yz"}));
  EXPECT_EQ(f.value_to_string(*f.find("n")), "[[7], [8, 9]]");
}

// --- getters -----------------------------------------------------------------------------

TEST(GgufGetters, ErrorsNameTheFileKeyAndTypes) {
  TempDir dir;
  GgufWriter w;
  w.set_u32("u32", 7);
  w.set_u64("big", std::numeric_limits<uint64_t>::max());
  w.set_i32("neg", -5);
  w.set_string("str", "text");
  w.set_u8("byte", 1);
  w.set_f32("f", 0.5f);
  w.set_u32_array("u32s", {1, 2});
  w.set_f32_array("f32s", {1.0f});
  w.set_u64_array("bigs", {std::numeric_limits<uint64_t>::max()});
  const GgufFile f = write_and_open(w, dir, "getters.gguf");

  EXPECT_ERROR_HAS(f.get_int("nope"), "getters.gguf", "missing metadata key 'nope'");
  EXPECT_ERROR_HAS(f.get_string("u32"), "getters.gguf", "'u32'", "has type u32", "expected string");
  EXPECT_ERROR_HAS(f.get_int("str"), "'str'", "has type string", "expected an integer");
  EXPECT_ERROR_HAS(f.get_float("u32"), "'u32'", "has type u32", "expected a float");
  EXPECT_ERROR_HAS(f.get_bool("byte"), "'byte'", "has type u8", "expected bool");
  EXPECT_ERROR_HAS(f.get_string_array("u32s"), "'u32s'", "has type array of u32",
                   "expected array of string");
  EXPECT_ERROR_HAS(f.get_int_array("f32s"), "'f32s'", "array of f32", "expected array of integers");
  EXPECT_ERROR_HAS(f.get_float_array("u32"), "'u32'", "has type u32", "expected array of floats");
  EXPECT_ERROR_HAS(f.get_bool_array("u32s"), "array of u32", "expected array of bool");
  EXPECT_ERROR_HAS(f.get_int("big"), "'big'", "u64", "18446744073709551615", "out of range");
  EXPECT_ERROR_HAS(f.get_int_array("bigs"), "'bigs'", "out of range");
  EXPECT_ERROR_HAS(f.get_uint("neg"), "'neg'", "i32", "-5", "negative");
  EXPECT_ERROR_HAS(f.tensor("w"), "getters.gguf", "missing tensor 'w'");

  EXPECT_EQ(f.get_uint("big"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.get_int("neg"), -5);
  EXPECT_EQ(f.get_float("f"), 0.5);
  EXPECT_EQ(f.get_int_opt("nope"), std::nullopt);
  EXPECT_EQ(f.get_uint_opt("nope"), std::nullopt);
  EXPECT_EQ(f.get_string_opt("nope"), std::nullopt);
  EXPECT_EQ(f.get_float_opt("nope"), std::nullopt);
  EXPECT_EQ(f.get_bool_opt("nope"), std::nullopt);
  EXPECT_EQ(f.get_int_opt("u32"), 7);
  EXPECT_EQ(f.get_string_opt("str"), "text");
  EXPECT_ERROR_HAS(f.get_bool_opt("str"), "'str'", "expected bool");  // wrong type still throws
  EXPECT_EQ(f.find_tensor("w"), nullptr);
}

// --- reader validation (hand-built files) ------------------------------------------------

GgufBytes one_tensor_file(uint32_t version = 3) {
  GgufBytes b;
  b.header(1, 1, version).kv_string("general.architecture", "hand");
  b.tensor_info("w", {4}, uint32_t(GgmlType::F32), 0).pad_to(32);
  for (float v : {1.0f, 2.0f, 3.0f, 4.0f}) b.put(v);
  return b;
}

TEST(GgufReader, ReadsHandBuiltFilesOfVersions2And3) {
  for (const uint32_t version : {2u, 3u}) {
    const GgufFile f = open_bytes(one_tensor_file(version));
    EXPECT_EQ(f.version(), version);
    EXPECT_EQ(f.get_string("general.architecture"), "hand");
    EXPECT_EQ(f.data_offset(), 128u);  // 24 + 44 (kv) + 33 (tensor info) = 101, padded
    const GgufTensorInfo& t = f.tensor("w");
    float values[4];
    std::memcpy(values, t.data, 16);
    EXPECT_EQ(values[3], 4.0f);
  }
}

TEST(GgufReader, RejectsOtherVersionsAndMagics) {
  EXPECT_ERROR_HAS(open_bytes(one_tensor_file(1)), "hand.gguf", "unsupported GGUF version 1");
  EXPECT_ERROR_HAS(open_bytes(one_tensor_file(4)), "unsupported GGUF version 4");
  EXPECT_ERROR_HAS(open_bytes(one_tensor_file(0x03000000)), "big-endian");
  GgufBytes ggml;
  ggml.raw("GGJT").u32(3).u64(0).u64(0);
  EXPECT_ERROR_HAS(open_bytes(ggml), "hand.gguf", "not a GGUF file", "GGJT");
  EXPECT_ERROR_HAS(open_bytes(GgufBytes{}), "not a GGUF file", "empty");
  EXPECT_ERROR_HAS(GgufFile::open("/nonexistent/dir/model.gguf"), "/nonexistent/dir/model.gguf");
}

TEST(GgufReader, RejectsDuplicateKeysAndTensorNames) {
  GgufBytes keys;
  keys.header(0, 2).kv_u32("general.x", 1).kv_u32("general.x", 2);
  EXPECT_ERROR_HAS(open_bytes(keys), "hand.gguf", "'general.x'", "duplicate metadata key");
  GgufBytes tensors;
  tensors.header(2, 0);
  tensors.tensor_info("w", {4}, 0, 0).tensor_info("w", {4}, 0, 32).pad_to(32).zeros(64);
  EXPECT_ERROR_HAS(open_bytes(tensors), "tensor 'w'", "duplicate tensor name");
}

TEST(GgufReader, RejectsBoolsOtherThanZeroOrOne) {
  GgufBytes scalar;
  scalar.header(0, 1).str("flag").type(GgufValueType::BOOL).u8(2);
  EXPECT_ERROR_HAS(open_bytes(scalar), "'flag'", "bool value 2", "expected 0 or 1");
  GgufBytes array;
  array.header(0, 1).str("flags").type(GgufValueType::ARRAY).type(GgufValueType::BOOL).u64(3);
  array.u8(1).u8(0).u8(255);
  EXPECT_ERROR_HAS(open_bytes(array), "'flags'", "bool value 255");
}

TEST(GgufReader, ValidatesTensorGeometry) {
  const uint32_t f32 = uint32_t(GgmlType::F32);
  GgufBytes zero_dim;
  zero_dim.header(1, 0).tensor_info("w", {4, 0}, f32, 0).pad_to(32).zeros(32);
  EXPECT_ERROR_HAS(open_bytes(zero_dim), "tensor 'w'", "dimension 1 is 0");
  GgufBytes block;
  block.header(1, 0).tensor_info("q", {128}, uint32_t(GgmlType::Q4_K), 0).pad_to(32).zeros(160);
  EXPECT_ERROR_HAS(open_bytes(block), "tensor 'q'", "128", "Q4_K block size 256");
  GgufBytes overlap;
  overlap.header(2, 0).tensor_info("a", {16}, f32, 0).tensor_info("b", {4}, f32, 32);
  overlap.pad_to(32).zeros(64);
  EXPECT_ERROR_HAS(open_bytes(overlap), "'a' [0, 64)", "'b' [32, 48)", "overlap");
  GgufBytes no_data;
  no_data.header(1, 0).tensor_info("w", {4}, f32, 0);  // ends before the padding
  EXPECT_ERROR_HAS(open_bytes(no_data), "truncated", "data section starts at 64");
}

TEST(GgufReader, AcceptsScalarsUnorderedTensorsAndKnownUnsupportedTypes) {
  GgufBytes b;
  b.header(3, 0);
  b.tensor_info("late", {4}, uint32_t(GgmlType::F32), 32);
  b.tensor_info("scalar", {}, uint32_t(GgmlType::F32), 0);
  b.tensor_info("iq", {256}, uint32_t(GgmlType::IQ2_XXS), 64);
  b.pad_to(32).zeros(64 + 66);
  const GgufFile f = open_bytes(b);
  EXPECT_EQ(f.tensor("scalar").n_dims, 0);
  EXPECT_EQ(f.tensor("scalar").n_elements(), 1);
  EXPECT_EQ(f.tensor("late").offset, 32u);
  EXPECT_EQ(f.tensor("iq").n_bytes, 66u);
  EXPECT_FALSE(type_is_supported(f.tensor("iq").type));
}

TEST(GgufReader, AcceptsTensorlessFilesWithoutPadding) {
  GgufBytes b;
  b.header(0, 1).kv_string("tokenizer.ggml.model", "gemma4");  // ends unpadded
  const GgufFile f = open_bytes(b);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gemma4");
  EXPECT_LE(f.data_offset(), f.file_size());
}

TEST(GgufReader, RequiresAU32GeneralAlignment) {
  GgufBytes wide;
  wide.header(0, 1).str("general.alignment").type(GgufValueType::U64).u64(32);
  EXPECT_ERROR_HAS(open_bytes(wide), "'general.alignment'", "has type u64", "expected u32");
  GgufBytes sixteen;
  sixteen.header(1, 1).kv_u32("general.alignment", 16);
  sixteen.tensor_info("w", {4}, 0, 0).pad_to(16).zeros(16);
  const GgufFile f = open_bytes(sixteen);
  EXPECT_EQ(f.alignment(), 16u);
  EXPECT_EQ(f.data_offset() % 16, 0u);
}

// --- fixtures ----------------------------------------------------------------------------

std::string fixture(const std::string& name) {
  return (test::fixtures_dir() / "gemma4-tiny" / name).string();
}

TEST(GgufFixture, TextF32MetadataAndTensors) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  const GgufFile f = GgufFile::open(fixture("text-f32.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_string("general.architecture"), "gemma4");
  EXPECT_EQ(f.get_int("gemma4.block_count"), 6);
  EXPECT_EQ(f.get_uint("gemma4.embedding_length"), 256u);
  EXPECT_EQ(f.get_int_array("gemma4.attention.head_count_kv"),
            (std::vector<int64_t>{2, 2, 2, 2, 2, 1}));
  EXPECT_EQ(f.get_bool_array("gemma4.attention.sliding_window_pattern"),
            (std::vector<bool>{true, true, true, true, true, false}));
  EXPECT_EQ(f.get_float("gemma4.attention.layer_norm_rms_epsilon"), double(1e-6f));
  EXPECT_EQ(f.get_float("gemma4.final_logit_softcapping"), 30.0);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gemma4");
  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 1530u);
  EXPECT_EQ(tokens[0], "<pad>");
  EXPECT_EQ(tokens[2], "<bos>");
  EXPECT_EQ(tokens[27], "<0x00>");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.merges").size(), 1152u);
  EXPECT_EQ(f.get_float_array("tokenizer.ggml.scores").size(), 1530u);
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type").size(), 1530u);
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 2);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_NE(f.get_string_view("tokenizer.chat_template").find("<|turn>"), std::string_view::npos);
  EXPECT_FALSE(f.has("tokenizer.ggml.pre"));

  ASSERT_EQ(f.tensors().size(), 86u);
  const GgufTensorInfo& embd = f.tensor("token_embd.weight");
  EXPECT_EQ(embd.type, GgmlType::F32);
  EXPECT_EQ(embd.n_dims, 2);
  EXPECT_EQ(embd.shape_string(), "[256, 1530]");
  EXPECT_EQ(embd.n_bytes, 256u * 1530u * 4u);
  // token_embd ~ N(0, 0.25) (fixture README): the bytes are the weights, not an offset error.
  std::vector<float> values(size_t(embd.n_elements()));
  std::memcpy(values.data(), embd.data, embd.n_bytes);
  double sum_sq = 0;
  for (float v : values) sum_sq += double(v) * v;
  EXPECT_NEAR(std::sqrt(sum_sq / double(values.size())), 0.25, 0.01);
  // rope_freqs = 16 x 1.0 then 48 x 1e30 (fixture README).
  const GgufTensorInfo& rope = f.tensor("rope_freqs.weight");
  ASSERT_EQ(rope.n_elements(), 64);
  std::vector<float> freqs(64);
  std::memcpy(freqs.data(), rope.data, 256);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(freqs[size_t(i)], i < 16 ? 1.0f : 1e30f) << i;
}

TEST(GgufFixture, QuantizedTensorTypesMatchTheManifest) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-q4_k_m.gguf");
  G4_REQUIRE_FIXTURE("gemma4-tiny/manifest.json");
  std::ifstream in(fixture("manifest.json"));
  const nlohmann::json manifest = nlohmann::json::parse(in);
  const auto& variants = manifest.at("quant_tensor_types");
  ASSERT_TRUE(variants.contains("q4_k_m"));
  for (const auto& [variant, types] : variants.items()) {
    const std::string path = fixture("text-" + variant + ".gguf");
    if (variant != "q4_k_m" && !std::filesystem::exists(path)) continue;
    SCOPED_TRACE(path);
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.tensors().size(), types.size());
    for (const auto& [name, type_name] : types.items()) {
      const GgufTensorInfo* t = f.find_tensor(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(ggml_type_name(t->type), type_name.get<std::string>()) << name;
    }
    EXPECT_EQ(f.get_int("general.quantization_version"), 2);
  }
  const GgufFile q4km = GgufFile::open(fixture("text-q4_k_m.gguf"));
  EXPECT_EQ(q4km.tensor("token_embd.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(q4km.tensor("token_embd.weight").n_bytes, 1530u * 210u);
}

TEST(GgufFixture, MmprojF32) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/mmproj-f32.gguf");
  const GgufFile f = GgufFile::open(fixture("mmproj-f32.gguf"));
  EXPECT_EQ(f.get_string("general.architecture"), "clip");
  EXPECT_EQ(f.get_string("clip.vision.projector_type"), "gemma4uv");
  EXPECT_EQ(f.get_string("clip.audio.projector_type"), "gemma4ua");
  EXPECT_TRUE(f.get_bool("clip.has_vision_encoder"));
  EXPECT_EQ(f.get_float_array("clip.vision.image_std"), (std::vector<float>{1, 1, 1}));
  ASSERT_EQ(f.tensors().size(), 11u);
  for (const GgufTensorInfo& t : f.tensors()) EXPECT_EQ(t.type, GgmlType::F32) << t.name;
  EXPECT_EQ(f.tensor("v.patch_embd.weight").shape_string(), "[6912, 256]");
}

// Copying every key and tensor through the writer reproduces the fixture byte for byte: the
// fixtures are packed in tensor order with zero padding, which is also the writer's layout.
TEST(GgufFixture, CopyThroughTheWriterIsByteIdentical) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  TempDir dir;
  for (const char* name : {"text-f32.gguf", "text-q4_k_m.gguf", "mmproj-f32.gguf"}) {
    SCOPED_TRACE(name);
    const std::string path = fixture(name);
    if (!std::filesystem::exists(path)) continue;
    const GgufFile source = GgufFile::open(path);
    GgufWriter w;
    w.set_version(source.version());
    for (const GgufKv& kv : source.metadata()) w.copy_kv(source, kv);
    for (const GgufTensorInfo& t : source.tensors()) {
      const std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
      w.add_tensor_streamed(t.name, t.type, ne,
                            [&t](uint8_t* dst, size_t n) { std::memcpy(dst, t.data, n); });
    }
    const std::string copy_path = (dir / name).string();
    w.write(copy_path);
    EXPECT_TRUE(test::read_file_bytes(copy_path) == test::read_file_bytes(path));

    const GgufFile copy = GgufFile::open(copy_path);
    ASSERT_EQ(copy.metadata().size(), source.metadata().size());
    for (size_t i = 0; i < source.metadata().size(); ++i)
      EXPECT_EQ(copy.value_to_string(copy.metadata()[i], 1u << 20),
                source.value_to_string(source.metadata()[i], 1u << 20));
    ASSERT_EQ(copy.tensors().size(), source.tensors().size());
    for (size_t i = 0; i < source.tensors().size(); ++i) {
      const GgufTensorInfo& a = source.tensors()[i];
      const GgufTensorInfo& b = copy.tensors()[i];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.offset, b.offset);
      EXPECT_EQ(std::memcmp(a.data, b.data, a.n_bytes), 0) << a.name;
    }
  }
}

}  // namespace
}  // namespace g4
