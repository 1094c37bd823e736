// GgufWriter: builds the header in memory, then streams tensor data to a temporary file that is
// renamed into place once complete (spec §4.1 layout).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/gguf_codec.h"

namespace g4 {
namespace {

using gguf_codec::Cursor;

constexpr size_t kMaxKeyBytes = 65535;  // spec §4.1: keys are at most 65535 bytes

template <class T>
void append(std::vector<uint8_t>& out, T value) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

void append_string(std::vector<uint8_t>& out, std::string_view text) {
  append<uint64_t>(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

template <class T>
std::vector<uint8_t> encode_scalar(T value) {
  std::vector<uint8_t> out;
  append(out, value);
  return out;
}

template <class T>
std::vector<uint8_t> encode_array(GgufValueType element, const std::vector<T>& values) {
  std::vector<uint8_t> out;
  out.reserve(12 + values.size() * sizeof(T));
  append<uint32_t>(out, uint32_t(element));
  append<uint64_t>(out, values.size());
  for (const T& v : values) append(out, v);
  return out;
}

// Owns a temporary output file; removes it unless commit() renamed it into place.
class TempOutputFile {
 public:
  explicit TempOutputFile(const std::string& final_path) : final_path_(final_path) {
    static std::atomic<unsigned> counter{0};
    temp_path_ = cat(final_path, ".tmp.", ::getpid(), ".", counter++);
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(final_path, ": cannot create ", temp_path_, ": ", std::strerror(errno));
  }
  ~TempOutputFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
  }
  TempOutputFile(const TempOutputFile&) = delete;
  TempOutputFile& operator=(const TempOutputFile&) = delete;

  void write_all(const uint8_t* data, size_t n) {
    while (n > 0) {
      const ssize_t written = ::write(fd_, data, n);
      if (written < 0) {
        if (errno == EINTR) continue;
        fail(final_path_, ": cannot write ", temp_path_, ": ", std::strerror(errno));
      }
      data += written;
      n -= size_t(written);
    }
  }
  void write_zeros(size_t n) {
    static const uint8_t kZeros[256] = {};
    while (n > 0) {
      const size_t chunk = std::min(n, sizeof(kZeros));
      write_all(kZeros, chunk);
      n -= chunk;
    }
  }
  void commit() {
    if (::fsync(fd_) != 0)
      fail(final_path_, ": cannot flush ", temp_path_, ": ", std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
      fail(final_path_, ": cannot close ", temp_path_, ": ", std::strerror(errno));
    if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
      fail(final_path_, ": cannot rename ", temp_path_, " into place: ", std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string final_path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

struct GgufWriter::Impl {
  struct Entry {
    std::string key;
    GgufValueType type;
    std::vector<uint8_t> value;  // encoded, as stored after the type tag
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    uint64_t n_bytes = 0;
    std::vector<uint8_t> data;  // in-memory tensors
    TensorProducer produce;     // streamed tensors
  };

  uint32_t version = 3;
  std::vector<Entry> kvs;
  std::unordered_map<std::string, size_t> kv_index;
  std::vector<Tensor> tensors;
  std::unordered_map<std::string, size_t> tensor_index;

  // `value` must already be a valid encoding of `type`.
  void set(const std::string& key, GgufValueType type, std::vector<uint8_t> value) {
    if (key.empty()) fail("GgufWriter: empty metadata key");
    if (key.size() > kMaxKeyBytes)
      fail("GgufWriter: metadata key of ", key.size(), " bytes (at most ", kMaxKeyBytes, ")");
    if (key == "general.alignment") {
      uint32_t alignment = 0;
      if (type == GgufValueType::U32) std::memcpy(&alignment, value.data(), 4);
      if (type != GgufValueType::U32 || !gguf_codec::is_valid_alignment(alignment))
        fail("GgufWriter: general.alignment must be a u32 power of two that is a multiple of 8");
    }
    const auto it = kv_index.find(key);
    if (it != kv_index.end()) {
      kvs[it->second].type = type;
      kvs[it->second].value = std::move(value);
      return;
    }
    kv_index.emplace(key, kvs.size());
    kvs.push_back({key, type, std::move(value)});
  }

  // Validates the description of a new tensor and returns its byte size.
  uint64_t check_new_tensor(const std::string& name, GgmlType type,
                            const std::vector<int64_t>& ne) const {
    const std::string where = cat("GgufWriter: tensor '", name, "'");
    if (name.empty()) fail("GgufWriter: empty tensor name");
    if (name.size() > kGgufMaxTensorNameBytes)
      fail(where, ": name of ", name.size(), " bytes (ggml reads at most ", kGgufMaxTensorNameBytes,
           ")");
    if (tensor_index.count(name)) fail(where, ": added twice");
    const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
    if (!info) fail(where, ": unknown ggml type id ", uint32_t(type));
    if (ne.size() > size_t(kGgufMaxDims))
      fail(where, ": ", ne.size(), " dimensions (at most ", kGgufMaxDims, ")");
    uint64_t n_elements = 1;
    for (size_t d = 0; d < ne.size(); ++d) {
      if (ne[d] <= 0) fail(where, ": dimension ", d, " is ", ne[d], " (expected >= 1)");
      if (!gguf_codec::checked_mul(n_elements, uint64_t(ne[d]), &n_elements) ||
          n_elements > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(where, ": element count overflows");
    }
    const uint64_t ne0 = ne.empty() ? 1 : uint64_t(ne[0]);
    if (ne0 % uint64_t(info->block_size) != 0)
      fail(where, ": dimension 0 (", ne0, ") is not a multiple of the ", info->name, " block size ",
           info->block_size);
    uint64_t n_bytes = 0;
    if (!gguf_codec::checked_mul(n_elements / uint64_t(info->block_size),
                                 uint64_t(info->block_bytes), &n_bytes))
      fail(where, ": byte size overflows");
    return n_bytes;
  }

  uint32_t alignment() const {
    const auto it = kv_index.find("general.alignment");
    if (it == kv_index.end()) return kGgufDefaultAlignment;
    uint32_t alignment = 0;
    std::memcpy(&alignment, kvs[it->second].value.data(), 4);  // checked by set()
    return alignment;
  }
};

GgufWriter::GgufWriter() : impl_(std::make_unique<Impl>()) {}
GgufWriter::~GgufWriter() = default;
GgufWriter::GgufWriter(GgufWriter&&) noexcept = default;
GgufWriter& GgufWriter::operator=(GgufWriter&&) noexcept = default;

void GgufWriter::set_version(uint32_t version) {
  if (version != 2 && version != 3)
    fail("GgufWriter: cannot write GGUF version ", version, " (supported: 2 and 3)");
  impl_->version = version;
}

void GgufWriter::set_alignment(uint32_t alignment) {
  if (!gguf_codec::is_valid_alignment(alignment))
    fail("GgufWriter: alignment ", alignment,
         " is not a power of two that is a multiple of 8 (8, 16, 32, ...)");
  if (alignment == kGgufDefaultAlignment && !has_key("general.alignment")) return;
  set_u32("general.alignment", alignment);
}

uint32_t GgufWriter::alignment() const {
  return impl_->alignment();
}

void GgufWriter::set_u8(const std::string& k, uint8_t v) {
  impl_->set(k, GgufValueType::U8, encode_scalar(v));
}
void GgufWriter::set_i8(const std::string& k, int8_t v) {
  impl_->set(k, GgufValueType::I8, encode_scalar(v));
}
void GgufWriter::set_u16(const std::string& k, uint16_t v) {
  impl_->set(k, GgufValueType::U16, encode_scalar(v));
}
void GgufWriter::set_i16(const std::string& k, int16_t v) {
  impl_->set(k, GgufValueType::I16, encode_scalar(v));
}
void GgufWriter::set_u32(const std::string& k, uint32_t v) {
  impl_->set(k, GgufValueType::U32, encode_scalar(v));
}
void GgufWriter::set_i32(const std::string& k, int32_t v) {
  impl_->set(k, GgufValueType::I32, encode_scalar(v));
}
void GgufWriter::set_u64(const std::string& k, uint64_t v) {
  impl_->set(k, GgufValueType::U64, encode_scalar(v));
}
void GgufWriter::set_i64(const std::string& k, int64_t v) {
  impl_->set(k, GgufValueType::I64, encode_scalar(v));
}
void GgufWriter::set_f32(const std::string& k, float v) {
  impl_->set(k, GgufValueType::F32, encode_scalar(v));
}
void GgufWriter::set_f64(const std::string& k, double v) {
  impl_->set(k, GgufValueType::F64, encode_scalar(v));
}
void GgufWriter::set_bool(const std::string& k, bool v) {
  impl_->set(k, GgufValueType::BOOL, encode_scalar(uint8_t(v ? 1 : 0)));
}
void GgufWriter::set_string(const std::string& k, const std::string& v) {
  std::vector<uint8_t> value;
  append_string(value, v);
  impl_->set(k, GgufValueType::STRING, std::move(value));
}

void GgufWriter::set_string_array(const std::string& k, const std::vector<std::string>& v) {
  std::vector<uint8_t> value;
  append<uint32_t>(value, uint32_t(GgufValueType::STRING));
  append<uint64_t>(value, v.size());
  for (const std::string& s : v) append_string(value, s);
  impl_->set(k, GgufValueType::ARRAY, std::move(value));
}
void GgufWriter::set_u8_array(const std::string& k, const std::vector<uint8_t>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::U8, v));
}
void GgufWriter::set_i8_array(const std::string& k, const std::vector<int8_t>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::I8, v));
}
void GgufWriter::set_u16_array(const std::string& k, const std::vector<uint16_t>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::U16, v));
}
void GgufWriter::set_i16_array(const std::string& k, const std::vector<int16_t>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::I16, v));
}
void GgufWriter::set_u32_array(const std::string& k, const std::vector<uint32_t>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::U32, v));
}
void GgufWriter::set_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::I32, v));
}
void GgufWriter::set_u64_array(const std::string& k, const std::vector<uint64_t>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::U64, v));
}
void GgufWriter::set_i64_array(const std::string& k, const std::vector<int64_t>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::I64, v));
}
void GgufWriter::set_f32_array(const std::string& k, const std::vector<float>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::F32, v));
}
void GgufWriter::set_f64_array(const std::string& k, const std::vector<double>& v) {
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::F64, v));
}
void GgufWriter::set_bool_array(const std::string& k, const std::vector<bool>& v) {
  std::vector<uint8_t> bytes(v.begin(), v.end());  // vector<bool> is bit-packed: widen to 0/1
  impl_->set(k, GgufValueType::ARRAY, encode_array(GgufValueType::BOOL, bytes));
}

void GgufWriter::set_encoded(const std::string& key, GgufValueType type,
                             const std::vector<uint8_t>& value) {
  const std::string where = cat("GgufWriter: metadata key '", key, "'");
  if (!gguf_codec::is_valid_value_type(uint32_t(type)))
    fail(where, ": unknown value type ", uint32_t(type));
  Cursor cursor(value.data(), value.size(), 0, where);
  cursor.skip_value(type);
  if (cursor.remaining() != 0)
    fail(where, ": the ", gguf_value_type_name(type), " encoding has ", cursor.remaining(),
         " bytes left over after the value");
  impl_->set(key, type, value);
}

void GgufWriter::copy_kv(const GgufFile& from, const GgufKv& kv) {
  if (kv.raw_offset > from.file_size() || kv.raw_size > from.file_size() - kv.raw_offset)
    fail("GgufWriter: metadata key '", kv.key, "' does not belong to ", from.path());
  const uint8_t* begin = from.bytes() + kv.raw_offset;
  set_encoded(kv.key, kv.type, std::vector<uint8_t>(begin, begin + kv.raw_size));
}

void GgufWriter::remove_key(const std::string& key) {
  const auto it = impl_->kv_index.find(key);
  if (it == impl_->kv_index.end()) return;
  impl_->kvs.erase(impl_->kvs.begin() + std::ptrdiff_t(it->second));
  impl_->kv_index.clear();
  for (size_t i = 0; i < impl_->kvs.size(); ++i) impl_->kv_index.emplace(impl_->kvs[i].key, i);
}

bool GgufWriter::has_key(const std::string& key) const {
  return impl_->kv_index.count(key) > 0;
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                            const void* data, size_t n_bytes) {
  const uint64_t expected = impl_->check_new_tensor(name, type, ne);
  if (!data) fail("GgufWriter: tensor '", name, "': no data");
  if (n_bytes != expected)
    fail("GgufWriter: tensor '", name, "' (", ggml_type_info(uint32_t(type))->name, "): got ",
         n_bytes, " bytes of data, the shape needs ", expected);
  Impl::Tensor t{name, type, ne, expected, {}, {}};
  const auto* bytes = static_cast<const uint8_t*>(data);
  t.data.assign(bytes, bytes + n_bytes);
  impl_->tensor_index.emplace(name, impl_->tensors.size());
  impl_->tensors.push_back(std::move(t));
}

void GgufWriter::add_tensor_streamed(const std::string& name, GgmlType type,
                                     const std::vector<int64_t>& ne, TensorProducer produce) {
  const uint64_t n_bytes = impl_->check_new_tensor(name, type, ne);
  if (!produce) fail("GgufWriter: tensor '", name, "': no producer");
  impl_->tensor_index.emplace(name, impl_->tensors.size());
  impl_->tensors.push_back({name, type, ne, n_bytes, {}, std::move(produce)});
}

void GgufWriter::write(const std::string& path) const {
  const uint64_t alignment = impl_->alignment();

  // Tensor offsets: each tensor starts at an alignment multiple of the data section.
  std::vector<uint64_t> offsets;
  offsets.reserve(impl_->tensors.size());
  uint64_t data_size = 0;
  for (const Impl::Tensor& t : impl_->tensors) {
    offsets.push_back(data_size);
    if (!gguf_codec::checked_add(data_size, t.n_bytes, &data_size) ||
        !gguf_codec::checked_align_up(data_size, alignment, &data_size))
      fail(path, ": the tensor data section overflows 64 bits");
  }

  std::vector<uint8_t> header;
  header.insert(header.end(), std::begin(gguf_codec::kMagic), std::end(gguf_codec::kMagic));
  append<uint32_t>(header, impl_->version);
  append<uint64_t>(header, impl_->tensors.size());
  append<uint64_t>(header, impl_->kvs.size());
  for (const Impl::Entry& kv : impl_->kvs) {
    append_string(header, kv.key);
    append<uint32_t>(header, uint32_t(kv.type));
    header.insert(header.end(), kv.value.begin(), kv.value.end());
  }
  for (size_t i = 0; i < impl_->tensors.size(); ++i) {
    const Impl::Tensor& t = impl_->tensors[i];
    append_string(header, t.name);
    append<uint32_t>(header, uint32_t(t.ne.size()));
    for (int64_t d : t.ne) append<uint64_t>(header, uint64_t(d));
    append<uint32_t>(header, uint32_t(t.type));
    append<uint64_t>(header, offsets[i]);
  }
  uint64_t header_size = 0;
  gguf_codec::checked_align_up(header.size(), alignment, &header_size);  // small: cannot overflow
  header.resize(size_t(header_size), 0);

  TempOutputFile out(path);
  out.write_all(header.data(), header.size());
  std::vector<uint8_t> buffer;  // reused by streamed tensors: holds the largest one
  for (const Impl::Tensor& t : impl_->tensors) {
    const size_t n_bytes = size_t(t.n_bytes);
    if (t.produce) {
      buffer.assign(n_bytes, 0);
      t.produce(buffer.data(), n_bytes);
      out.write_all(buffer.data(), n_bytes);
    } else {
      out.write_all(t.data.data(), n_bytes);
    }
    uint64_t padded = 0;
    gguf_codec::checked_align_up(t.n_bytes, alignment, &padded);  // checked in the offsets loop
    out.write_zeros(size_t(padded - t.n_bytes));
  }
  out.commit();
}

}  // namespace g4
