// GGUF: the single-file model format (ggml docs/gguf.md; spec: ../shared/spec/formats.md §4.1).
//
// GgufFile maps a file read-only, validates the whole header up front (every count, string,
// dimension and offset is checked against the file size before use) and then hands out metadata
// through typed getters and tensors as pointers into the mapping (no copies).
// GgufWriter builds files: small ones in memory (tests, init-random) and large ones streamed
// tensor by tensor (quantize, convert).
//
// Decisions where the format leaves room (every one is checked by tests/test_gguf*.cpp):
// - Versions 2 and 3 are read (identical layouts; v3 only added big-endian files, which are
//   rejected with a clear message). Version 1 (32-bit counts) is rejected with a clear message.
// - general.alignment must be a u32 that is a power of two and a multiple of 8 (spec §4.1 says
//   "multiple of 8"; ggml's reader requires a power of two; we accept what both accept, so tensor
//   data of any element type up to 8 bytes is naturally aligned in the mapping).
// - Bool values (scalars and array elements) must be 0 or 1 (spec §4.1); anything else is an error.
// - Nested arrays are read and validated up to kGgufMaxArrayNesting levels; typed getters reject
//   them (value_to_string and GgufWriter::copy_kv handle them).
// - A tensor may have 0 dims (a scalar: one element); otherwise 1..4 dims, each >= 1. dims[0]
//   must be a multiple of the type's block size. Offsets must be multiples of the alignment;
//   tensor data must lie inside the file and must not overlap another tensor's data. Tensors need
//   not be packed or in offset order (ggml requires both; we only require what makes reads safe).
// - Duplicate metadata keys and duplicate tensor names are errors.
// - Unknown ggml type ids are errors; known types this engine cannot compute with still load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/ggml_type.h"
#include "core/mapped_file.h"

namespace g4 {

// clang-format off
enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
// clang-format on

// "u8", "i32", "f32", "bool", "string", "array"...; "unknown" for ids outside 0..12.
const char* gguf_value_type_name(GgufValueType type);

constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr int kGgufMaxDims = 4;
// Arrays of arrays may nest this deep (an array of scalars is depth 1). Bounds the recursion a
// hostile file can trigger.
constexpr int kGgufMaxArrayNesting = 8;
// ggml's GGML_MAX_NAME is 64 including the terminating NUL; the writer refuses longer names so
// every file it writes is readable by ggml-based tools. The reader accepts any length.
constexpr size_t kGgufMaxTensorNameBytes = 63;

// One metadata entry. The value stays in the mapping; `value_offset` points at its first byte
// (after the type tag). For arrays, `array_type` and `array_count` describe the elements and
// `value_offset` points at the first element.
struct GgufKv {
  std::string key;
  GgufValueType type;
  GgufValueType array_type = GgufValueType::U8;  // valid when type == ARRAY
  uint64_t array_count = 0;                      // valid when type == ARRAY
  size_t value_offset = 0;
  // The whole encoded value as stored after the type tag (for arrays: element type, count and
  // elements), so it can be copied verbatim: [raw_offset, raw_offset + raw_size) of the file.
  size_t raw_offset = 0;
  size_t raw_size = 0;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  int n_dims = 0;
  int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
  uint64_t offset = 0;                      // relative to the start of the tensor data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping; valid while the GgufFile lives

  // Cannot overflow: the reader checked the product (and the byte size) when loading.
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // "[256, 1530]"
};

class GgufFile {
 public:
  // Maps and validates `path`. Throws g4::Error naming the file and what is wrong (truncation,
  // overflow, bad type, duplicate name, misaligned or out-of-range tensor data...).
  static GgufFile open(const std::string& path);
  // Validates a GGUF image held in memory (the bytes are copied into a 64-byte aligned buffer).
  // `name` stands in for the path in error messages. For tests and fuzzers.
  static GgufFile from_bytes(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }
  size_t data_offset() const { return data_offset_; }  // start of the tensor data section
  const uint8_t* bytes() const { return data_; }       // the whole file

  // --- metadata ---
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufKv* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters. A missing key or a value of the wrong kind throws g4::Error naming the file,
  // the key, the expected and the found type. Integer getters accept any integer type whose value
  // fits; float getters accept F32 and F64. Array getters reject arrays of arrays.
  std::string get_string(std::string_view key) const;
  std::string_view get_string_view(std::string_view key) const;  // into the mapping
  int64_t get_int(std::string_view key) const;
  uint64_t get_uint(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<bool> get_bool_array(std::string_view key) const;

  // Missing key -> nullopt; present with the wrong type -> throws like the plain getters.
  std::optional<std::string> get_string_opt(std::string_view key) const;
  std::optional<int64_t> get_int_opt(std::string_view key) const;
  std::optional<uint64_t> get_uint_opt(std::string_view key) const;
  std::optional<double> get_float_opt(std::string_view key) const;
  std::optional<bool> get_bool_opt(std::string_view key) const;

  // A short human-readable rendering of any value (arrays show their first `max_items`, long
  // strings are cut, nested arrays are rendered recursively).
  std::string value_to_string(const GgufKv& kv, size_t max_items = 8) const;

  // --- tensors ---
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Throws g4::Error "<file>: missing tensor '<name>'" when absent.
  const GgufTensorInfo& tensor(std::string_view name) const;

 private:
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  // Lets find(std::string_view) look up without building a std::string.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };
  using NameIndex = std::unordered_map<std::string, size_t, NameHash, std::equal_to<>>;

  GgufFile() = default;
  void parse();  // validates data_[0, size_) and fills everything below
  size_t parse_header(size_t* n_tensors, size_t* n_kvs);
  size_t parse_metadata(size_t pos, size_t n_kvs);
  void resolve_alignment();
  size_t parse_tensor_infos(size_t pos, size_t n_tensors);
  void place_tensor_data(size_t end_of_infos);
  const GgufKv& require(std::string_view key) const;

  MappedFile file_;                                // set by open()
  std::unique_ptr<uint8_t[], AlignedFree> owned_;  // set by from_bytes()
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  NameIndex kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  NameIndex tensor_index_;
};

// Writes GGUF v3 (or v2 for tests) files. Metadata keys keep insertion order; setting a key twice
// replaces the value in place (the key keeps its first position). Tensors are laid out in
// insertion order at `alignment`-multiple offsets, each followed by zero padding to the alignment
// (also after the last one), as ggml's and gguf-py's writers do: copying every key and tensor of
// a file written by them reproduces it byte for byte.
class GgufWriter {
 public:
  GgufWriter();
  ~GgufWriter();
  GgufWriter(GgufWriter&&) noexcept;
  GgufWriter& operator=(GgufWriter&&) noexcept;

  void set_version(uint32_t version);  // 2 or 3 (default 3)
  // Power of two, multiple of 8 (see the file comment). Stored as the general.alignment key,
  // which is the single source of truth: copying or setting that key changes the alignment too.
  // Setting the default (32) when the key is absent adds nothing.
  void set_alignment(uint32_t alignment);
  uint32_t alignment() const;

  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_u8_array(const std::string& key, const std::vector<uint8_t>& v);
  void set_i8_array(const std::string& key, const std::vector<int8_t>& v);
  void set_u16_array(const std::string& key, const std::vector<uint16_t>& v);
  void set_i16_array(const std::string& key, const std::vector<int16_t>& v);
  void set_u32_array(const std::string& key, const std::vector<uint32_t>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void set_u64_array(const std::string& key, const std::vector<uint64_t>& v);
  void set_i64_array(const std::string& key, const std::vector<int64_t>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_f64_array(const std::string& key, const std::vector<double>& v);
  void set_bool_array(const std::string& key, const std::vector<bool>& v);
  // Sets a value from its encoding as stored after the type tag (little-endian; for arrays:
  // u32 element type, u64 count, elements). Validated like the reader validates, so this is how
  // arrays of arrays are written. Throws g4::Error on a malformed encoding.
  void set_encoded(const std::string& key, GgufValueType type, const std::vector<uint8_t>& value);
  // Copies a value of any type (arrays included) from another file, e.g. when quantizing.
  void copy_kv(const GgufFile& from, const GgufKv& kv);
  void remove_key(const std::string& key);
  bool has_key(const std::string& key) const;

  // In-memory tensor: the bytes are copied. ne in ggml order; n_bytes must match type and shape.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                  const void* data, size_t n_bytes);
  // Streamed tensor: only its description is stored; `produce` is called once during write()
  // with a zeroed buffer of exactly the tensor's byte size to fill. Lets multi-GB files be
  // written holding only the largest tensor in memory.
  using TensorProducer = std::function<void(uint8_t* dst, size_t n_bytes)>;
  void add_tensor_streamed(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                           TensorProducer produce);

  // Writes the file (to a temporary name next to it, renamed into place on success; the
  // temporary is removed on failure, including when a producer throws). Throws g4::Error.
  void write(const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace g4
