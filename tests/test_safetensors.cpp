// safetensors reading and writing: round trips, sharded checkpoints, and hostile files (every
// truncation, malformed headers, bad offsets) refused with a g4::Error naming the file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace g4 {
namespace {

// A file image from header text and a data buffer (the header is not padded).
std::vector<uint8_t> raw_file(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(8 + header.size() + data.size());
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

SafetensorsFile parse(const std::vector<uint8_t>& bytes) {
  return SafetensorsFile::from_bytes(bytes.data(), bytes.size(), "hostile.safetensors");
}

// Expects parse() to throw a g4::Error whose message names the file and holds every fragment.
void expect_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& fragments) {
  try {
    parse(bytes);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("hostile.safetensors"), std::string::npos) << what;
    for (const std::string& f : fragments) EXPECT_NE(what.find(f), std::string::npos) << what;
  }
}

// A small valid file written by SafetensorsWriter: F32, BF16 and F16 tensors plus metadata.
std::vector<uint8_t> small_file(const std::filesystem::path& path) {
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  const std::vector<float> a = {1.0f, -2.5f, 3.25f, 0.0f, 7.0f, 1e-3f};
  w.add_tensor("a.weight", SafetensorsDtype::F32, {2, 3}, a.data(), 24);
  const std::vector<uint16_t> b = {f32_to_bf16(0.5f), f32_to_bf16(-1.0f), f32_to_bf16(3.0f)};
  w.add_tensor("b.bias", SafetensorsDtype::BF16, {3}, b.data(), 6);
  const std::vector<uint16_t> c = {f32_to_fp16(2.0f)};
  w.add_tensor("c", SafetensorsDtype::F16, {}, c.data(), 2);
  w.write(path.string());
  return test::read_file_bytes(path);
}

TEST(SafetensorsTest, RoundTrip) {
  test::TempDir dir;
  small_file(dir / "m.safetensors");
  const SafetensorsFile f = SafetensorsFile::open((dir / "m.safetensors").string());
  EXPECT_EQ(f.data_offset() % 8, 0u) << "the writer pads the header to 8 bytes";
  ASSERT_EQ(f.tensors().size(), 3u);
  const SafetensorsTensor& a = f.tensor("a.weight");
  EXPECT_EQ(a.dtype, SafetensorsDtype::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.n_elements(), 6);
  EXPECT_EQ(a.shape_string(), "[2, 3]");
  float values[6];
  std::memcpy(values, a.data, 24);
  EXPECT_EQ(values[1], -2.5f);
  EXPECT_EQ(values[5], 1e-3f);
  const SafetensorsTensor& b = f.tensor("b.bias");
  EXPECT_EQ(b.dtype, SafetensorsDtype::BF16);
  uint16_t b1;
  std::memcpy(&b1, b.data + 2, 2);
  EXPECT_EQ(bf16_to_f32(b1), -1.0f);
  const SafetensorsTensor& c = f.tensor("c");
  EXPECT_TRUE(c.shape.empty());
  EXPECT_EQ(c.n_elements(), 1);
  ASSERT_EQ(f.metadata().size(), 1u);
  EXPECT_EQ(f.metadata()[0].second, "pt");
  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_THROW(f.tensor("missing"), Error);
  // Tensors are in data order and point into the mapping at their offsets.
  EXPECT_EQ(f.tensors()[0].name, "a.weight");
  EXPECT_EQ(b.data, a.data + 24);
}

TEST(SafetensorsTest, FromBytesMatchesOpen) {
  test::TempDir dir;
  const std::vector<uint8_t> bytes = small_file(dir / "m.safetensors");
  const SafetensorsFile f = parse(bytes);
  EXPECT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(std::memcmp(f.tensor("b.bias").data, bytes.data() + f.data_offset() + 24, 6), 0);
}

TEST(SafetensorsTest, DtypeNamesAndSizes) {
  EXPECT_EQ(safetensors_dtype_from_name("BF16"), SafetensorsDtype::BF16);
  EXPECT_EQ(safetensors_dtype_size(SafetensorsDtype::F64), 8u);
  EXPECT_EQ(safetensors_dtype_size(SafetensorsDtype::F8_E4M3), 1u);
  EXPECT_STREQ(safetensors_dtype_name(SafetensorsDtype::I16), "I16");
  EXPECT_FALSE(safetensors_dtype_from_name("bf16").has_value());  // names are case-sensitive
  EXPECT_EQ(safetensors_dtype_to_ggml(SafetensorsDtype::F16), GgmlType::F16);
  EXPECT_FALSE(safetensors_dtype_to_ggml(SafetensorsDtype::I32).has_value());
}

TEST(SafetensorsTest, EveryTruncationIsAnError) {
  test::TempDir dir;
  const std::vector<uint8_t> bytes = small_file(dir / "m.safetensors");
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW(SafetensorsFile::from_bytes(bytes.data(), n, "cut.safetensors"), Error) << n;
  }
  EXPECT_NO_THROW(parse(bytes));
}

TEST(SafetensorsTest, HostileHeadersAreNamedErrors) {
  const std::vector<uint8_t> d12(12, 0);
  const auto entry = [](const std::string& dtype, const std::string& shape,
                        const std::string& offsets) {
    return "\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets;
  };
  // Header sizes.
  {
    std::vector<uint8_t> huge(16, 0);
    const uint64_t n = 100'000'001;
    std::memcpy(huge.data(), &n, 8);
    expect_error(huge, {"100 MB"});
    const uint64_t past = 9;
    std::memcpy(huge.data(), &past, 8);
    expect_error(huge, {"runs past the end"});
    expect_error({1, 2, 3}, {"too short"});
  }
  // JSON itself.
  expect_error(raw_file("{\"a\":", {}), {"not valid"});
  expect_error(raw_file("[1,2]", {}), {"not a JSON object"});
  expect_error(raw_file("{\"a\xff\":{}}", {}), {"not valid"});  // invalid UTF-8
  expect_error(raw_file("", {}), {"not valid"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[3]", "[0,12]") + "},\"x\":{" +
                            entry("F32", "[3]", "[0,12]") + "}}",
                        d12),
               {"'x' twice"});
  expect_error(
      raw_file(
          "{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}",
          d12),
      {"'dtype' twice"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[[3]]", "[0,12]") + "}}", d12), {"nests"});
  expect_error(raw_file("{\"__metadata__\":{\"k\":1}}", {}), {"__metadata__"});
  // Entries.
  expect_error(raw_file("{\"x\":{" + entry("Q4", "[3]", "[0,12]") + "}}", d12),
               {"'x'", "dtype 'Q4'"});
  expect_error(raw_file("{\"x\":{" + entry("F4", "[3]", "[0,12]") + "}}", d12),
               {"'x'", "sub-byte"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[-3]", "[0,12]") + "}}", d12),
               {"'x'", "non-negative"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[3.0]", "[0,12]") + "}}", d12),
               {"'x'", "non-negative"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[4611686018427387904,4]", "[0,12]") + "}}", d12),
               {"'x'", "too many elements"});
  expect_error(raw_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[3]}}", d12), {"'x'", "data_offsets"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[3]", "[0,24]") + "}}", d12),
               {"'x'", "past the end"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[3]", "[12,0]") + "}}", d12),
               {"'x'", "end before"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[2]", "[0,12]") + "}}", d12),
               {"'x'", "needs 8 bytes"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[3]", "[0,12,3]") + "}}", d12),
               {"'x'", "[begin, end]"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[3]", "[0,18446744073709551616]") + "}}", d12),
               {"'x'", "non-negative integer"});
  // Layout of the data.
  expect_error(raw_file("{\"x\":{" + entry("F32", "[2]", "[0,8]") + "},\"y\":{" +
                            entry("F32", "[2]", "[4,12]") + "}}",
                        d12),
               {"overlaps"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[2]", "[4,12]") + "}}", d12), {"hole"});
  expect_error(raw_file("{\"x\":{" + entry("F32", "[2]", "[0,8]") + "}}", d12),
               {"after the last tensor"});
  // A valid image of the same shape parses (the cases above differ from it in one way each).
  EXPECT_NO_THROW(parse(raw_file("{\"x\":{" + entry("F32", "[3]", "[0,12]") + "}}", d12)));
  EXPECT_NO_THROW(parse(raw_file("{}", {})));  // no tensors at all
}

TEST(SafetensorsTest, RandomCorruptionNeverCrashes) {
  test::TempDir dir;
  const std::vector<uint8_t> bytes = small_file(dir / "m.safetensors");
  std::mt19937 rng(7);
  int errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> b = bytes;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = uint8_t(rng());
    try {
      const SafetensorsFile f = parse(b);
      for (const SafetensorsTensor& t : f.tensors()) {
        // Whatever parses must lie inside the image and match its shape.
        ASSERT_LE(f.data_offset() + t.end, b.size());
        ASSERT_EQ(t.n_bytes(), uint64_t(t.n_elements()) * safetensors_dtype_size(t.dtype));
      }
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

class SafetensorsCheckpointTest : public testing::Test {
 protected:
  // Two shards and an index: a.* in the first, b.* in the second.
  void write_shards() {
    const std::vector<float> v = {1, 2, 3, 4};
    SafetensorsWriter s1, s2;
    s1.add_tensor("a.weight", SafetensorsDtype::F32, {2, 2}, v.data(), 16);
    s1.add_tensor("a.bias", SafetensorsDtype::F32, {2}, v.data(), 8);
    s2.add_tensor("b.weight", SafetensorsDtype::F32, {4}, v.data(), 16);
    s1.write((dir_ / "model-00001-of-00002.safetensors").string());
    s2.write((dir_ / "model-00002-of-00002.safetensors").string());
  }
  void write_index(const std::vector<std::pair<std::string, std::string>>& map) {
    write_safetensors_index((dir_ / "model.safetensors.index.json").string(), map, 40);
  }
  std::vector<std::pair<std::string, std::string>> good_map() const {
    return {{"a.weight", "model-00001-of-00002.safetensors"},
            {"a.bias", "model-00001-of-00002.safetensors"},
            {"b.weight", "model-00002-of-00002.safetensors"}};
  }
  void expect_open_error(const std::vector<std::string>& fragments) {
    try {
      SafetensorsCheckpoint::open(dir_.path().string());
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      for (const std::string& f : fragments)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
  }
  test::TempDir dir_;
};

TEST_F(SafetensorsCheckpointTest, ShardsAreJoined) {
  write_shards();
  write_index(good_map());
  const SafetensorsCheckpoint c = SafetensorsCheckpoint::open(dir_.path().string());
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.tensor("b.weight").shape, (std::vector<int64_t>{4}));
  EXPECT_NE(c.tensor("b.weight").file.find("00002"), std::string::npos);
  EXPECT_EQ(c.tensors().size(), 3u);
  EXPECT_EQ(c.find("nope"), nullptr);
  EXPECT_THROW(c.tensor("nope"), Error);
  // The index file itself can be named too.
  EXPECT_EQ(SafetensorsCheckpoint::open((dir_ / "model.safetensors.index.json").string()).size(),
            3u);
}

TEST_F(SafetensorsCheckpointTest, SingleFileFolder) {
  const std::vector<float> v = {1, 2};
  SafetensorsWriter w;
  w.add_tensor("x", SafetensorsDtype::F32, {2}, v.data(), 8);
  w.write((dir_ / "model.safetensors").string());
  EXPECT_EQ(SafetensorsCheckpoint::open(dir_.path().string()).size(), 1u);
  EXPECT_EQ(SafetensorsCheckpoint::open((dir_ / "model.safetensors").string()).size(), 1u);
}

TEST_F(SafetensorsCheckpointTest, BadIndexesAreNamed) {
  expect_open_error({"no model.safetensors"});
  write_shards();
  auto map = good_map();
  map[2].second = "model-00001-of-00002.safetensors";
  write_index(map);
  expect_open_error({"'b.weight'", "00001", "not there"});
  map = good_map();
  map[0].second = "../escape.safetensors";
  write_index(map);
  expect_open_error({"plain file name"});
  map = good_map();
  map[0].second = "missing.safetensors";
  write_index(map);
  expect_open_error({"missing.safetensors"});
  map = good_map();
  map.erase(map.begin() + 1);  // a.bias: its shard is read, but the index does not list it
  write_index(map);
  expect_open_error({"'a.bias'", "not listed"});
  // The same tensor in two shards.
  const std::vector<float> v = {1, 2, 3, 4};
  SafetensorsWriter dup;
  dup.add_tensor("b.weight", SafetensorsDtype::F32, {4}, v.data(), 16);
  dup.add_tensor("a.bias", SafetensorsDtype::F32, {2}, v.data(), 8);
  dup.write((dir_ / "model-00002-of-00002.safetensors").string());
  write_index(good_map());
  expect_open_error({"'a.bias'", "two shards"});
  std::ofstream(dir_ / "model.safetensors.index.json") << "{\"weight_map\": [1]}";
  expect_open_error({"weight_map"});
}

TEST(SafetensorsTest, WriterRefusesInconsistentTensors) {
  SafetensorsWriter w;
  const float x = 1.0f;
  EXPECT_THROW(w.add_tensor("x", SafetensorsDtype::F32, {2}, &x, 4), Error);
  w.add_tensor("x", SafetensorsDtype::F32, {1}, &x, 4);
  EXPECT_THROW(w.add_tensor("x", SafetensorsDtype::F32, {1}, &x, 4), Error);
  EXPECT_THROW(w.add_tensor("__metadata__", SafetensorsDtype::F32, {1}, &x, 4), Error);
  EXPECT_EQ(w.data_bytes(), 4u);
}

}  // namespace
}  // namespace g4
