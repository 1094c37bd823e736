// GGUF: the single-file model format (ggml docs/gguf.md; spec: ../shared/spec/formats.md §4.1).
//
// GgufFile maps a file read-only, validates the whole header up front (every count, string,
// dimension and offset is checked against the file size before use) and then hands out metadata
// through typed getters and tensors as pointers into the mapping (no copies).
// GgufWriter builds files: small ones in memory (tests, init-random) and large ones streamed
// tensor by tensor (quantize, convert).
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

enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_value_type_name(GgufValueType type);

constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr int kGgufMaxDims = 4;

// One metadata entry. The value stays in the mapping; `value_offset` points at its first byte
// (after the type tag). For arrays, `array_type` and `array_count` describe the elements and
// `value_offset` points at the first element.
struct GgufKv {
  std::string key;
  GgufValueType type;
  GgufValueType array_type = GgufValueType::U8;  // valid when type == ARRAY
  uint64_t array_count = 0;                      // valid when type == ARRAY
  size_t value_offset = 0;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  int n_dims = 0;
  int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
  uint64_t offset = 0;                       // relative to the start of the tensor data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping; valid while the GgufFile lives

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // "[256, 1530]"
};

class GgufFile {
 public:
  // Maps and validates `path`. Throws g4::Error naming the file and what is wrong (truncation,
  // overflow, bad type, duplicate name, misaligned or out-of-range tensor data...).
  static GgufFile open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t file_size() const { return file_.size(); }
  size_t data_offset() const { return data_offset_; }  // start of the tensor data section

  // --- metadata ---
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufKv* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters. A missing key or a value of the wrong kind throws g4::Error naming the file,
  // the key, the expected and the found type. Integer getters accept any integer type whose value
  // fits; float getters accept F32 and F64.
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  uint64_t get_uint(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<bool> get_bool_array(std::string_view key) const;

  std::optional<std::string> get_string_opt(std::string_view key) const;
  std::optional<int64_t> get_int_opt(std::string_view key) const;
  std::optional<double> get_float_opt(std::string_view key) const;
  std::optional<bool> get_bool_opt(std::string_view key) const;

  // A short human-readable rendering of any value (arrays show their first `max_items`).
  std::string value_to_string(const GgufKv& kv, size_t max_items = 8) const;

  // --- tensors ---
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Throws g4::Error "<file>: missing tensor '<name>'" when absent.
  const GgufTensorInfo& tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  MappedFile file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Writes GGUF v3 (or v2 for tests) files. Metadata keys keep insertion order; setting a key twice
// replaces the value. Tensors are laid out in insertion order at `alignment`-multiple offsets.
class GgufWriter {
 public:
  GgufWriter();
  ~GgufWriter();
  GgufWriter(GgufWriter&&) noexcept;
  GgufWriter& operator=(GgufWriter&&) noexcept;

  void set_version(uint32_t version);      // 2 or 3 (default 3)
  void set_alignment(uint32_t alignment);  // also written as general.alignment when not 32

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
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void set_u32_array(const std::string& key, const std::vector<uint32_t>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_bool_array(const std::string& key, const std::vector<bool>& v);
  // Copies a value of any type (arrays included) from another file, e.g. when quantizing.
  void copy_kv(const GgufFile& from, const GgufKv& kv);
  void remove_key(const std::string& key);

  // In-memory tensor: the bytes are copied. ne in ggml order; n_bytes must match type and shape.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                  const void* data, size_t n_bytes);
  // Streamed tensor: only its description is stored; `produce` is called once during write()
  // with a buffer of exactly the tensor's byte size to fill. Lets multi-GB files be written
  // without holding them in memory.
  using TensorProducer = std::function<void(uint8_t* dst, size_t n_bytes)>;
  void add_tensor_streamed(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                           TensorProducer produce);

  // Writes the file (to a temporary name, renamed into place on success). Throws g4::Error.
  void write(const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace g4
