#include "formats/gguf_codec.h"

#include "core/error.h"

namespace g4 {

const char* gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8:
      return "u8";
    case GgufValueType::I8:
      return "i8";
    case GgufValueType::U16:
      return "u16";
    case GgufValueType::I16:
      return "i16";
    case GgufValueType::U32:
      return "u32";
    case GgufValueType::I32:
      return "i32";
    case GgufValueType::F32:
      return "f32";
    case GgufValueType::BOOL:
      return "bool";
    case GgufValueType::STRING:
      return "string";
    case GgufValueType::ARRAY:
      return "array";
    case GgufValueType::U64:
      return "u64";
    case GgufValueType::I64:
      return "i64";
    case GgufValueType::F64:
      return "f64";
  }
  return "unknown";
}

namespace gguf_codec {

size_t scalar_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::BOOL:
      return 1;
    case GgufValueType::U16:
    case GgufValueType::I16:
      return 2;
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::F32:
      return 4;
    case GgufValueType::U64:
    case GgufValueType::I64:
    case GgufValueType::F64:
      return 8;
    case GgufValueType::STRING:
    case GgufValueType::ARRAY:
      return 0;
  }
  return 0;
}

bool is_integer(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::U16:
    case GgufValueType::I16:
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::U64:
    case GgufValueType::I64:
      return true;
    default:
      return false;
  }
}

bool is_float(GgufValueType type) {
  return type == GgufValueType::F32 || type == GgufValueType::F64;
}

std::string describe_type(const GgufKv& kv) {
  if (kv.type != GgufValueType::ARRAY) return gguf_value_type_name(kv.type);
  return cat("array of ", gguf_value_type_name(kv.array_type));
}

void Cursor::fail(const std::string& what) const {
  g4::fail(context_, ": ", what);
}

void Cursor::need(uint64_t n, std::string_view what) const {
  if (n > remaining())
    fail(cat("truncated: ", what, " needs ", n, " bytes at offset ", pos_, " but only ",
             remaining(), " remain (file size ", size_, ")"));
}

std::string_view Cursor::read_string(std::string_view what) {
  const uint64_t length = read<uint64_t>(cat(what, " length"));
  if (length > remaining())
    fail(cat(what, " length ", length, " at offset ", pos_ - 8, " exceeds the ", remaining(),
             " bytes left in the file (truncated or corrupt)"));
  std::string_view text(reinterpret_cast<const char*>(data_ + pos_), size_t(length));
  pos_ += size_t(length);
  return text;
}

GgufValueType Cursor::read_value_type(std::string_view what) {
  const uint32_t id = read<uint32_t>(what);
  if (!is_valid_value_type(id))
    fail(cat("unknown ", what, " ", id, " at offset ", pos_ - 4, " (expected 0..", kMaxValueTypeId,
             ")"));
  return GgufValueType(id);
}

void Cursor::skip_value(GgufValueType type, int depth) {
  switch (type) {
    case GgufValueType::STRING:
      read_string("string");
      return;
    case GgufValueType::ARRAY:
      skip_array(depth + 1);
      return;
    case GgufValueType::BOOL: {
      const uint8_t value = read<uint8_t>("bool value");
      if (value > 1)
        fail(cat("bool value ", int(value), " at offset ", pos_ - 1, " (expected 0 or 1)"));
      return;
    }
    default:
      skip(scalar_size(type), gguf_value_type_name(type));
  }
}

void Cursor::skip_array(int depth) {
  if (depth > kGgufMaxArrayNesting)
    fail(cat("arrays nested ", depth, " deep at offset ", pos_, " (at most ", kGgufMaxArrayNesting,
             " levels are accepted)"));
  const GgufValueType element = read_value_type("array element type");
  const uint64_t count = read<uint64_t>("array count");
  const size_t count_offset = pos_ - 8;
  // Bound the count by the bytes left before looping, so a hostile count costs nothing.
  const size_t element_bytes = scalar_size(element);
  const size_t min_element_bytes = element_bytes                      ? element_bytes
                                   : element == GgufValueType::STRING ? kMinStringBytes
                                                                      : kMinArrayBytes;
  if (count > remaining() / min_element_bytes)
    fail(cat("array of ", count, " ", gguf_value_type_name(element), " (count at offset ",
             count_offset, ") needs at least ", min_element_bytes, " bytes per element but only ",
             remaining(), " bytes remain (truncated or corrupt)"));
  if (element_bytes && element != GgufValueType::BOOL) {
    pos_ += size_t(count) * element_bytes;  // in range: checked just above
    return;
  }
  for (uint64_t i = 0; i < count; ++i) skip_value(element, depth);
}

}  // namespace gguf_codec
}  // namespace g4
