// GgufFile: validates a whole GGUF image up front (spec §4.1), then serves metadata and tensors
// from the mapping. Every count read from the file is bounded by the bytes left before it is used
// to reserve or loop, and every size is computed with checked arithmetic.
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/gguf_codec.h"

namespace g4 {
namespace {

using gguf_codec::Cursor;

// Names from a hostile file may hold any bytes: show them escaped and cut.
std::string printable(std::string_view text) {
  constexpr size_t kMaxShown = 96;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += char(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (text.size() > kMaxShown) out += cat("... (", text.size(), " bytes)");
  return out;
}

template <class T>
T load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// An integer of any GGUF integer type, kept exact.
struct Integer {
  bool is_signed;
  int64_t s;   // valid when is_signed
  uint64_t u;  // valid when !is_signed
};

Integer decode_integer(const uint8_t* p, GgufValueType type) {
  switch (type) {
    case GgufValueType::U8:
      return {false, 0, load<uint8_t>(p)};
    case GgufValueType::I8:
      return {true, load<int8_t>(p), 0};
    case GgufValueType::U16:
      return {false, 0, load<uint16_t>(p)};
    case GgufValueType::I16:
      return {true, load<int16_t>(p), 0};
    case GgufValueType::U32:
      return {false, 0, load<uint32_t>(p)};
    case GgufValueType::I32:
      return {true, load<int32_t>(p), 0};
    case GgufValueType::U64:
      return {false, 0, load<uint64_t>(p)};
    case GgufValueType::I64:
      return {true, load<int64_t>(p), 0};
    default:
      fail("internal: decode_integer on a non-integer type");
  }
}

double decode_float(const uint8_t* p, GgufValueType type) {
  return type == GgufValueType::F32 ? double(load<float>(p)) : load<double>(p);
}

// f64 -> f32 for get_float_array. Finite values beyond the f32 range become +-inf explicitly
// (a plain conversion of an out-of-range value is undefined behaviour in C++).
float narrow_to_float(double value) {
  constexpr double kMax = double(std::numeric_limits<float>::max());
  if (value > kMax) return std::numeric_limits<float>::infinity();
  if (value < -kMax) return -std::numeric_limits<float>::infinity();
  return float(value);
}

template <class T>
std::string shortest(T value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string scalar_to_string(const uint8_t* p, GgufValueType type) {
  if (gguf_codec::is_integer(type)) {
    const Integer v = decode_integer(p, type);
    return v.is_signed ? std::to_string(v.s) : std::to_string(v.u);
  }
  if (type == GgufValueType::F32) return shortest(load<float>(p));
  if (type == GgufValueType::F64) return shortest(load<double>(p));
  return p[0] ? "true" : "false";  // BOOL
}

void append_escaped(std::string& out, char c) {
  switch (c) {
    case '\n':
      out += "\\n";
      return;
    case '\t':
      out += "\\t";
      return;
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        out += printable(std::string_view(&c, 1));  // \xNN
      } else {
        out += c;
      }
  }
}

// A string value in quotes with control characters escaped, cut after 64 bytes.
std::string quoted_for_display(std::string_view text) {
  constexpr size_t kMaxBytes = 64;
  size_t cut = std::min(text.size(), kMaxBytes);
  // Do not end in the middle of a UTF-8 sequence.
  while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  std::string out = "\"";
  for (size_t i = 0; i < cut; ++i) append_escaped(out, text[i]);
  out += '"';
  if (cut < text.size()) out += cat("... (", text.size(), " bytes)");
  return out;
}

// Renders the value of `type` at the cursor (already validated by parse) and moves past it.
std::string render_value(Cursor& cursor, const uint8_t* data, GgufValueType type,
                         size_t max_items) {
  if (type == GgufValueType::STRING) return quoted_for_display(cursor.read_string("string"));
  if (type != GgufValueType::ARRAY) {
    const size_t at = cursor.pos();
    cursor.skip(gguf_codec::scalar_size(type), gguf_value_type_name(type));
    return scalar_to_string(data + at, type);
  }
  const GgufValueType element = cursor.read_value_type("array element type");
  const uint64_t count = cursor.read<uint64_t>("array count");
  std::string out = "[";
  for (uint64_t i = 0; i < count; ++i) {
    if (i == max_items) {
      // Skip the rest without rendering it.
      for (uint64_t j = i; j < count; ++j) cursor.skip_value(element, 1);
      out += cat(", ... (", count, " items)");
      break;
    }
    if (i) out += ", ";
    out += render_value(cursor, data, element, max_items);
  }
  return out + "]";
}

}  // namespace

std::string GgufTensorInfo::shape_string() const {
  std::string out = "[";
  for (int d = 0; d < n_dims; ++d) out += cat(d ? ", " : "", ne[d]);
  return out + "]";
}

void GgufFile::AlignedFree::operator()(uint8_t* p) const {
  std::free(p);
}

GgufFile GgufFile::open(const std::string& path) {
  GgufFile file;
  file.file_ = MappedFile(path);
  file.path_ = path;
  file.data_ = file.file_.data();
  file.size_ = file.file_.size();
  file.parse();
  return file;
}

GgufFile GgufFile::from_bytes(const uint8_t* data, size_t size, const std::string& name) {
  constexpr size_t kBufferAlignment = 64;
  GgufFile file;
  file.path_ = name;
  const size_t capacity = std::max<size_t>(
      kBufferAlignment, (size + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment);
  auto* buffer = static_cast<uint8_t*>(std::aligned_alloc(kBufferAlignment, capacity));
  if (!buffer) fail(name, ": cannot allocate ", size, " bytes");
  file.owned_.reset(buffer);
  if (size) std::memcpy(buffer, data, size);
  file.data_ = buffer;
  file.size_ = size;
  file.parse();
  return file;
}

void GgufFile::parse() {
  size_t n_tensors = 0;
  size_t n_kvs = 0;
  size_t pos = parse_header(&n_tensors, &n_kvs);
  pos = parse_metadata(pos, n_kvs);
  resolve_alignment();
  pos = parse_tensor_infos(pos, n_tensors);
  place_tensor_data(pos);
}

size_t GgufFile::parse_header(size_t* n_tensors, size_t* n_kvs) {
  Cursor cursor(data_, size_, 0, path_);
  const size_t magic_bytes = std::min<size_t>(size_, 4);
  if (size_ == 0) cursor.fail("not a GGUF file: the file is empty");
  if (std::memcmp(data_, gguf_codec::kMagic, magic_bytes) != 0) {
    std::string found;
    for (size_t i = 0; i < magic_bytes; ++i) found += data_[i];
    cursor.fail(cat("not a GGUF file: the magic is '", printable(found),
                    "' (expected 'GGUF'; size ", size_, " bytes)"));
  }
  cursor.skip(4, "the magic");
  version_ = cursor.read<uint32_t>("the version");
  if (version_ == 1)
    cursor.fail(
        "unsupported GGUF version 1 (the 2023 format with 32-bit counts); convert the model "
        "again with a current converter (versions 2 and 3 are supported)");
  // A big-endian file's version 2 or 3 reads as 0x02000000 or 0x03000000 here.
  if (version_ == 0x02000000u || version_ == 0x03000000u)
    cursor.fail(cat("big-endian GGUF (the version reads ", version_,
                    " little-endian); only little-endian files are supported"));
  if (version_ != 2 && version_ != 3)
    cursor.fail(cat("unsupported GGUF version ", version_, " (supported: 2 and 3)"));
  const uint64_t tensor_count = cursor.read<uint64_t>("the tensor count");
  const uint64_t kv_count = cursor.read<uint64_t>("the metadata entry count");
  if (kv_count > cursor.remaining() / gguf_codec::kMinKvBytes)
    cursor.fail(cat("the header claims ", kv_count, " metadata entries but only ",
                    cursor.remaining(), " bytes follow (each entry needs at least ",
                    gguf_codec::kMinKvBytes, "): truncated or corrupt"));
  if (tensor_count > cursor.remaining() / gguf_codec::kMinTensorInfoBytes)
    cursor.fail(cat("the header claims ", tensor_count, " tensors but only ", cursor.remaining(),
                    " bytes follow (each tensor info needs at least ",
                    gguf_codec::kMinTensorInfoBytes, "): truncated or corrupt"));
  *n_tensors = size_t(tensor_count);
  *n_kvs = size_t(kv_count);
  return cursor.pos();
}

size_t GgufFile::parse_metadata(size_t pos, size_t n_kvs) {
  Cursor cursor(data_, size_, pos, path_);
  kvs_.reserve(n_kvs);  // bounded by the file size in parse_header
  for (size_t i = 0; i < n_kvs; ++i) {
    cursor.set_context(cat(path_, ": metadata entry ", i, " of ", n_kvs));
    GgufKv kv;
    kv.key = std::string(cursor.read_string("key"));
    cursor.set_context(cat(path_, ": metadata key '", printable(kv.key), "'"));
    kv.type = cursor.read_value_type("value type");
    kv.raw_offset = cursor.pos();
    kv.value_offset = kv.raw_offset;
    if (kv.type == GgufValueType::ARRAY) {
      Cursor peek = cursor;
      kv.array_type = peek.read_value_type("array element type");
      kv.array_count = peek.read<uint64_t>("array count");
      kv.value_offset = peek.pos();
    }
    cursor.skip_value(kv.type);
    kv.raw_size = cursor.pos() - kv.raw_offset;
    const auto [it, inserted] = kv_index_.emplace(kv.key, kvs_.size());
    if (!inserted)
      cursor.fail(cat("duplicate metadata key (entries ", it->second, " and ", i, ")"));
    kvs_.push_back(std::move(kv));
  }
  return cursor.pos();
}

void GgufFile::resolve_alignment() {
  const GgufKv* kv = find("general.alignment");
  if (!kv) return;
  if (kv->type != GgufValueType::U32)
    fail(path_, ": metadata key 'general.alignment' has type ", gguf_codec::describe_type(*kv),
         "; expected u32");
  const uint32_t alignment = load<uint32_t>(data_ + kv->value_offset);
  if (!gguf_codec::is_valid_alignment(alignment))
    fail(path_, ": general.alignment is ", alignment,
         "; expected a power of two that is a multiple of 8 (8, 16, 32, ...)");
  alignment_ = alignment;
}

size_t GgufFile::parse_tensor_infos(size_t pos, size_t n_tensors) {
  Cursor cursor(data_, size_, pos, path_);
  if (n_tensors > cursor.remaining() / gguf_codec::kMinTensorInfoBytes)
    cursor.fail(cat("the header claims ", n_tensors, " tensors but only ", cursor.remaining(),
                    " bytes follow the metadata (each tensor info needs at least ",
                    gguf_codec::kMinTensorInfoBytes, "): truncated or corrupt"));
  tensors_.reserve(n_tensors);
  for (size_t i = 0; i < n_tensors; ++i) {
    cursor.set_context(cat(path_, ": tensor info ", i, " of ", n_tensors));
    GgufTensorInfo t;
    t.name = std::string(cursor.read_string("tensor name"));
    cursor.set_context(cat(path_, ": tensor '", printable(t.name), "'"));
    const uint32_t n_dims = cursor.read<uint32_t>("n_dims");
    if (n_dims > uint32_t(kGgufMaxDims))
      cursor.fail(cat("has ", n_dims, " dimensions (at most ", kGgufMaxDims, " are supported)"));
    t.n_dims = int(n_dims);
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = cursor.read<uint64_t>("a dimension");
      if (dim == 0 || dim > uint64_t(std::numeric_limits<int64_t>::max()))
        cursor.fail(cat("dimension ", d, " is ", dim, " (expected 1 .. 2^63-1)"));
      if (!gguf_codec::checked_mul(n_elements, dim, &n_elements) ||
          n_elements > uint64_t(std::numeric_limits<int64_t>::max()))
        cursor.fail("the product of the dimensions overflows 64 bits");
      t.ne[d] = int64_t(dim);
    }
    const uint32_t type_id = cursor.read<uint32_t>("ggml type");
    const GgmlTypeInfo* info = ggml_type_info(type_id);
    if (!info) cursor.fail(cat("unknown ggml type id ", type_id, " (not a ggml tensor type)"));
    t.type = GgmlType(type_id);
    t.offset = cursor.read<uint64_t>("data offset");
    if (t.ne[0] % info->block_size != 0)
      cursor.fail(cat("shape ", t.shape_string(), ": dimension 0 (", t.ne[0],
                      ") is not a multiple of the ", info->name, " block size ", info->block_size));
    const uint64_t n_rows = n_elements / uint64_t(t.ne[0]);
    uint64_t row_bytes = 0;
    if (!gguf_codec::checked_mul(uint64_t(t.ne[0]) / info->block_size, info->block_bytes,
                                 &row_bytes) ||
        !gguf_codec::checked_mul(row_bytes, n_rows, &t.n_bytes))
      cursor.fail(cat("shape ", t.shape_string(), " of ", info->name, ": byte size overflows"));
    if (t.offset % alignment_ != 0)
      cursor.fail(
          cat("data offset ", t.offset, " is not a multiple of the alignment ", alignment_));
    const auto [it, inserted] = tensor_index_.emplace(t.name, tensors_.size());
    if (!inserted) cursor.fail(cat("duplicate tensor name (tensors ", it->second, " and ", i, ")"));
    tensors_.push_back(std::move(t));
  }
  return cursor.pos();
}

void GgufFile::place_tensor_data(size_t end_of_infos) {
  uint64_t data_start = 0;
  if (!gguf_codec::checked_align_up(end_of_infos, alignment_, &data_start))
    fail(path_, ": the tensor data offset overflows");
  if (tensors_.empty()) {
    // Files without tensors (vocab-only) may end right after the metadata, without padding.
    data_offset_ = size_t(std::min<uint64_t>(data_start, size_));
    return;
  }
  if (data_start > size_)
    fail(path_, ": truncated: the tensor data section starts at ", data_start,
         " (after padding to ", alignment_, ") but the file is ", size_, " bytes");
  data_offset_ = size_t(data_start);
  const uint64_t data_size = size_ - data_start;
  for (GgufTensorInfo& t : tensors_) {
    uint64_t end = 0;
    if (!gguf_codec::checked_add(t.offset, t.n_bytes, &end) || end > data_size)
      fail(path_, ": tensor '", printable(t.name), "' (", ggml_type_name(t.type), " ",
           t.shape_string(), ", ", t.n_bytes, " bytes at data offset ", t.offset,
           ") runs past the end of the file: the data section holds ", data_size,
           " bytes (truncated or corrupt)");
    t.data = data_ + data_offset_ + t.offset;
  }
  // Overlapping tensors would alias each other's weights: reject them.
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensorInfo& before = tensors_[order[i - 1]];
    const GgufTensorInfo& after = tensors_[order[i]];
    if (before.offset + before.n_bytes > after.offset)
      fail(path_, ": the data of tensors '", printable(before.name), "' [", before.offset, ", ",
           before.offset + before.n_bytes, ") and '", printable(after.name), "' [", after.offset,
           ", ", after.offset + after.n_bytes, ") overlap");
  }
}

// --- metadata access ---

const GgufKv* GgufFile::find(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const GgufKv& GgufFile::require(std::string_view key) const {
  const GgufKv* kv = find(key);
  if (!kv) fail(path_, ": missing metadata key '", key, "'");
  return *kv;
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, const GgufKv& kv, const char* expected) {
  fail(path, ": metadata key '", kv.key, "' has type ", gguf_codec::describe_type(kv),
       "; expected ", expected);
}

int64_t integer_as_int64(const std::string& path, const std::string& key, const Integer& v,
                         GgufValueType type) {
  if (v.is_signed) return v.s;
  if (v.u > uint64_t(std::numeric_limits<int64_t>::max()))
    fail(path, ": metadata key '", key, "' (", gguf_value_type_name(type), ") value ", v.u,
         " is out of range for a signed 64-bit integer");
  return int64_t(v.u);
}

uint64_t integer_as_uint64(const std::string& path, const std::string& key, const Integer& v,
                           GgufValueType type) {
  if (!v.is_signed) return v.u;
  if (v.s < 0)
    fail(path, ": metadata key '", key, "' (", gguf_value_type_name(type), ") value ", v.s,
         " is negative; expected an unsigned integer");
  return uint64_t(v.s);
}

constexpr const char* kIntegerTypes = "an integer (u8, i8, u16, i16, u32, i32, u64 or i64)";

}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  return std::string(get_string_view(key));
}

std::string_view GgufFile::get_string_view(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (kv.type != GgufValueType::STRING) wrong_type(path_, kv, "string");
  const uint64_t length = load<uint64_t>(data_ + kv.value_offset);
  return std::string_view(reinterpret_cast<const char*>(data_ + kv.value_offset + 8),
                          size_t(length));
}

int64_t GgufFile::get_int(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (!gguf_codec::is_integer(kv.type)) wrong_type(path_, kv, kIntegerTypes);
  return integer_as_int64(path_, kv.key, decode_integer(data_ + kv.value_offset, kv.type), kv.type);
}

uint64_t GgufFile::get_uint(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (!gguf_codec::is_integer(kv.type)) wrong_type(path_, kv, kIntegerTypes);
  return integer_as_uint64(path_, kv.key, decode_integer(data_ + kv.value_offset, kv.type),
                           kv.type);
}

double GgufFile::get_float(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (!gguf_codec::is_float(kv.type)) wrong_type(path_, kv, "a float (f32 or f64)");
  return decode_float(data_ + kv.value_offset, kv.type);
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (kv.type != GgufValueType::BOOL) wrong_type(path_, kv, "bool");
  return data_[kv.value_offset] != 0;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (kv.type != GgufValueType::ARRAY || kv.array_type != GgufValueType::STRING)
    wrong_type(path_, kv, "array of string");
  Cursor cursor(data_, size_, kv.value_offset, cat(path_, ": metadata key '", kv.key, "'"));
  std::vector<std::string> out;
  out.reserve(size_t(kv.array_count));  // validated against the file size by parse()
  for (uint64_t i = 0; i < kv.array_count; ++i) out.emplace_back(cursor.read_string("string"));
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (kv.type != GgufValueType::ARRAY || !gguf_codec::is_integer(kv.array_type))
    wrong_type(path_, kv, "array of integers (u8, i8, u16, i16, u32, i32, u64 or i64)");
  const size_t element_bytes = gguf_codec::scalar_size(kv.array_type);
  std::vector<int64_t> out(size_t(kv.array_count));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = integer_as_int64(
        path_, kv.key, decode_integer(data_ + kv.value_offset + i * element_bytes, kv.array_type),
        kv.array_type);
  return out;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (kv.type != GgufValueType::ARRAY || !gguf_codec::is_float(kv.array_type))
    wrong_type(path_, kv, "array of floats (f32 or f64)");
  const size_t element_bytes = gguf_codec::scalar_size(kv.array_type);
  std::vector<float> out(size_t(kv.array_count));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] =
        narrow_to_float(decode_float(data_ + kv.value_offset + i * element_bytes, kv.array_type));
  return out;
}

std::vector<bool> GgufFile::get_bool_array(std::string_view key) const {
  const GgufKv& kv = require(key);
  if (kv.type != GgufValueType::ARRAY || kv.array_type != GgufValueType::BOOL)
    wrong_type(path_, kv, "array of bool");
  std::vector<bool> out(size_t(kv.array_count));
  for (size_t i = 0; i < out.size(); ++i) out[i] = data_[kv.value_offset + i] != 0;
  return out;
}

std::optional<std::string> GgufFile::get_string_opt(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key);
}

std::optional<int64_t> GgufFile::get_int_opt(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_int(key);
}

std::optional<uint64_t> GgufFile::get_uint_opt(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_uint(key);
}

std::optional<double> GgufFile::get_float_opt(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_float(key);
}

std::optional<bool> GgufFile::get_bool_opt(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_bool(key);
}

std::string GgufFile::value_to_string(const GgufKv& kv, size_t max_items) const {
  Cursor cursor(data_, size_, kv.raw_offset, cat(path_, ": metadata key '", kv.key, "'"));
  return render_value(cursor, data_, kv.type, max_items);
}

// --- tensors ---

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) fail(path_, ": missing tensor '", name, "'");
  return *t;
}

}  // namespace g4
