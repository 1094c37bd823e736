// Internal to the GGUF reader and writer: the encoding facts of spec §4.1 (value sizes, type
// names) and a bounds-checked little-endian cursor that validates encoded values. Shared so the
// writer accepts exactly what the reader accepts.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "formats/gguf.h"

namespace g4::gguf_codec {

static_assert(std::endian::native == std::endian::little,
              "GGUF files are little-endian; this reader copies values without byte swapping");
static_assert(sizeof(size_t) == 8, "offsets into multi-GB files need a 64-bit size_t");

constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kMaxValueTypeId = 12;
// Smallest encodings, used to bound counts by the bytes left before anything is reserved.
constexpr size_t kMinKvBytes = 8 + 4 + 1;              // empty key, type tag, one-byte value
constexpr size_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims = 0, type, offset
constexpr size_t kMinStringBytes = 8;                  // the u64 length
constexpr size_t kMinArrayBytes = 4 + 8;               // element type and count

inline bool is_valid_value_type(uint32_t id) {
  return id <= kMaxValueTypeId;
}

// Bytes of one value of a fixed-size type; 0 for STRING and ARRAY.
size_t scalar_size(GgufValueType type);
bool is_integer(GgufValueType type);
bool is_float(GgufValueType type);

// "u32", or "array of u32" for arrays (the element type of `kv`), for error messages.
std::string describe_type(const GgufKv& kv);

// Checked arithmetic for sizes computed from untrusted counts: false on overflow.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
// align_offset(o) = o + (A - o % A) % A (spec §4.1); false on overflow.
inline bool checked_align_up(uint64_t offset, uint64_t alignment, uint64_t* out) {
  return checked_add(offset, (alignment - offset % alignment) % alignment, out);
}
inline bool is_valid_alignment(uint64_t alignment) {
  return alignment >= 8 && alignment % 8 == 0 && std::has_single_bit(alignment);
}

// Reads [0, size) of `data`; every read is checked against the end first. Errors are thrown as
// g4::Error "<context>: <what went wrong>" where the owner keeps `context` up to date
// ("model.gguf: metadata key 'general.name'").
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, size_t pos, std::string context)
      : data_(data), size_(size), pos_(pos), context_(std::move(context)) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& context() const { return context_; }
  void set_context(std::string context) { context_ = std::move(context); }

  [[noreturn]] void fail(const std::string& what) const;

  // Checks that `n` more bytes exist for `what` ("the tensor count"), else reports truncation.
  void need(uint64_t n, std::string_view what) const;

  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string_view read_string(std::string_view what);
  void skip(uint64_t n, std::string_view what) {
    need(n, what);
    pos_ += size_t(n);
  }

  // Reads a u32 value type tag and checks it names a type.
  GgufValueType read_value_type(std::string_view what);
  // Validates one encoded value of `type` at the cursor and moves past it. `depth` counts the
  // arrays enclosing this value.
  void skip_value(GgufValueType type, int depth = 0);

 private:
  void skip_array(int depth);
  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  std::string context_;
};

}  // namespace g4::gguf_codec
