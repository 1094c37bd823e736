#include "formats/safetensors.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_set>

#include "core/error.h"

namespace g4 {
namespace {

using nlohmann::json;

struct DtypeInfo {
  SafetensorsDtype dtype;
  const char* name;
  size_t size;
};

// clang-format off
constexpr DtypeInfo kDtypes[] = {
    {SafetensorsDtype::BOOL, "BOOL", 1},       {SafetensorsDtype::U8, "U8", 1},
    {SafetensorsDtype::I8, "I8", 1},           {SafetensorsDtype::F8_E5M2, "F8_E5M2", 1},
    {SafetensorsDtype::F8_E4M3, "F8_E4M3", 1}, {SafetensorsDtype::F8_E8M0, "F8_E8M0", 1},
    {SafetensorsDtype::I16, "I16", 2},         {SafetensorsDtype::U16, "U16", 2},
    {SafetensorsDtype::F16, "F16", 2},         {SafetensorsDtype::BF16, "BF16", 2},
    {SafetensorsDtype::I32, "I32", 4},         {SafetensorsDtype::U32, "U32", 4},
    {SafetensorsDtype::F32, "F32", 4},         {SafetensorsDtype::I64, "I64", 8},
    {SafetensorsDtype::U64, "U64", 8},         {SafetensorsDtype::F64, "F64", 8},
};
// clang-format on

constexpr uint64_t kMaxDim = uint64_t(1) << 62;

// A buffer of at least 64-byte alignment, like the page-aligned mapping of open().
uint8_t* aligned_copy(const uint8_t* data, size_t size) {
  const size_t padded = (std::max<size_t>(size, 1) + 63) / 64 * 64;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, padded));
  if (!p) throw std::bad_alloc();
  if (size) std::memcpy(p, data, size);
  return p;
}

// Parses JSON text, refusing duplicate keys in any object (nlohmann would keep the last one) and
// containers nested deeper than `max_depth` (a safetensors header needs 3 levels).
json parse_strict_json(const char* begin, const char* end, int max_depth, const std::string& what) {
  std::vector<std::unordered_set<std::string>> open_objects;
  const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth)
          fail(what, " nests objects or arrays deeper than the format allows");
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.empty() && !open_objects.back().insert(key).second)
          fail(what, " has the key '", key, "' twice");
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, check);
  } catch (const json::exception& e) {
    fail(what, " is not valid UTF-8 JSON: ", e.what());
  }
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

uint64_t read_offset(const json& value, const std::string& where) {
  if (!value.is_number_unsigned())
    fail(where, " is ", value.dump(), ", expected a non-negative integer");
  return value.get<uint64_t>();
}

std::string read_text_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, ": cannot read: ", ec.message());
  if (size > max_bytes) fail(path, ": ", size, " bytes is too large for an index file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail(path, ": read error");
  return buffer.str();
}

}  // namespace

const char* safetensors_dtype_name(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

size_t safetensors_dtype_size(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

std::optional<SafetensorsDtype> safetensors_dtype_from_name(std::string_view name) {
  for (const DtypeInfo& d : kDtypes)
    if (name == d.name) return d.dtype;
  return std::nullopt;
}

std::optional<GgmlType> safetensors_dtype_to_ggml(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::F32:
      return GgmlType::F32;
    case SafetensorsDtype::F16:
      return GgmlType::F16;
    case SafetensorsDtype::BF16:
      return GgmlType::BF16;
    default:
      return std::nullopt;
  }
}

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string SafetensorsTensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += cat(i ? ", " : "", shape[i]);
  return s + "]";
}

// --- SafetensorsFile ---

void SafetensorsFile::AlignedFree::operator()(uint8_t* p) const {
  std::free(p);
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.file_ = MappedFile(path);
  f.path_ = path;
  f.data_ = f.file_.data();
  f.size_ = f.file_.size();
  f.parse();
  return f;
}

SafetensorsFile SafetensorsFile::from_bytes(const uint8_t* data, size_t size,
                                            const std::string& name) {
  SafetensorsFile f;
  f.owned_.reset(aligned_copy(data, size));
  f.path_ = name;
  f.data_ = f.owned_.get();
  f.size_ = size;
  f.parse();
  return f;
}

void SafetensorsFile::parse() {
  const std::string& p = path_;
  if (size_ < 8)
    fail(p, ": not a safetensors file: ", size_, " bytes is too short for the 8-byte header size");
  uint64_t header_size = 0;
  std::memcpy(&header_size, data_, 8);
  if (header_size > kSafetensorsMaxHeaderBytes)
    fail(p, ": header size ", header_size,
         " exceeds the format's 100 MB limit (corrupt, or not a safetensors file)");
  if (header_size > size_ - 8)
    fail(p, ": header size ", header_size, " runs past the end of the file (", size_,
         " bytes): truncated, or not a safetensors file");
  data_offset_ = size_t(8 + header_size);
  const uint64_t buffer_size = size_ - data_offset_;

  const char* text = reinterpret_cast<const char*>(data_ + 8);
  const json root = parse_strict_json(text, text + header_size, 3, p + ": the header");
  if (!root.is_object()) fail(p, ": the header is not a JSON object");

  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(p, ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail(p, ": __metadata__ value of '", key, "' is not a string");
        metadata_.emplace_back(key, value.get<std::string>());
      }
      continue;
    }
    const std::string where = cat(p, ": tensor '", name, "'");
    if (!entry.is_object()) fail(where, " is not described by a JSON object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || shape_it == entry.end() || offsets_it == entry.end())
      fail(where, " needs \"dtype\", \"shape\" and \"data_offsets\"");

    SafetensorsTensor t;
    t.name = name;
    t.file = p;
    if (!dtype_it->is_string()) fail(where, ": dtype is ", dtype_it->dump(), ", expected a string");
    const std::string dtype_name = dtype_it->get<std::string>();
    const auto dtype = safetensors_dtype_from_name(dtype_name);
    if (!dtype) {
      const bool sub_byte = dtype_name == "F4" || dtype_name.rfind("F6_", 0) == 0;
      fail(where, " has dtype '", dtype_name, "'",
           sub_byte ? ", a sub-byte type this reader does not support"
                    : ", which is not a safetensors dtype",
           " (supported: F32, F16, BF16, F64, I8..I64, U8..U64, BOOL, F8_E4M3, F8_E5M2, F8_E8M0)");
    }
    t.dtype = *dtype;

    if (!shape_it->is_array()) fail(where, ": shape is ", shape_it->dump(), ", expected an array");
    uint64_t n_elements = 1;
    for (const json& dim : *shape_it) {
      if (!dim.is_number_unsigned() || dim.get<uint64_t>() > kMaxDim)
        fail(where, ": shape ", shape_it->dump(), " has the entry ", dim.dump(),
             ", expected non-negative integers");
      t.shape.push_back(int64_t(dim.get<uint64_t>()));
      if (!checked_mul(n_elements, dim.get<uint64_t>(), &n_elements) || n_elements > kMaxDim)
        fail(where, ": shape ", shape_it->dump(), " has too many elements");
    }
    uint64_t n_bytes = 0;
    if (!checked_mul(n_elements, safetensors_dtype_size(t.dtype), &n_bytes))
      fail(where, ": shape ", shape_it->dump(), " is too large");

    if (!offsets_it->is_array() || offsets_it->size() != 2)
      fail(where, ": data_offsets is ", offsets_it->dump(), ", expected [begin, end]");
    t.begin = read_offset((*offsets_it)[0], where + ": data_offsets[0]");
    t.end = read_offset((*offsets_it)[1], where + ": data_offsets[1]");
    if (t.end < t.begin)
      fail(where, ": data_offsets [", t.begin, ", ", t.end, "] end before they begin");
    if (t.end > buffer_size)
      fail(where, ": data_offsets [", t.begin, ", ", t.end, "] run past the end of the data (",
           buffer_size, " bytes after the header): truncated file?");
    if (t.end - t.begin != n_bytes)
      fail(where, ": ", dtype_name, " shape ", t.shape_string(), " needs ", n_bytes,
           " bytes but data_offsets [", t.begin, ", ", t.end, "] hold ", t.end - t.begin);
    t.data = data_ + data_offset_ + t.begin;
    tensors_.push_back(std::move(t));
  }

  // The data must be covered exactly once: sorted by offset, each tensor starts where the
  // previous one ended, and the last one ends at the end of the file.
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t covered = 0;
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& t : tensors_) {
    if (t.begin < covered)
      fail(p, ": tensor '", t.name, "' (bytes ", t.begin, "..", t.end, ") overlaps tensor '",
           previous->name, "' (bytes ", previous->begin, "..", previous->end, ")");
    if (t.begin > covered)
      fail(p, ": ", t.begin - covered, " bytes before tensor '", t.name,
           "' belong to no tensor (data_offsets leave a hole)");
    covered = t.end;
    previous = &t;
  }
  if (covered != buffer_size)
    fail(p, ": ", buffer_size - covered, " bytes after the last tensor belong to no tensor");
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::tensor(std::string_view name) const {
  const SafetensorsTensor* t = find(name);
  if (!t) fail(path_, ": no tensor '", name, "'");
  return *t;
}

void SafetensorsFile::release_pages(const SafetensorsTensor& t, uint64_t offset, uint64_t n) const {
  if (!file_.data() || t.data < data_ || t.data + t.n_bytes() > data_ + size_ ||
      offset >= t.n_bytes())
    return;
  release_mapped_pages(t.data + offset, size_t(std::min(n, t.n_bytes() - offset)));
}

// --- SafetensorsCheckpoint ---

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& path) {
  namespace fs = std::filesystem;
  SafetensorsCheckpoint c;
  c.source_ = path;
  fs::path index_path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(fs::path(path) / "model.safetensors.index.json")) {
      index_path = fs::path(path) / "model.safetensors.index.json";
    } else if (fs::exists(fs::path(path) / "model.safetensors")) {
      c.add_file(std::make_unique<SafetensorsFile>(
          SafetensorsFile::open((fs::path(path) / "model.safetensors").string())));
      return c;
    } else {
      fail(path, ": no model.safetensors.index.json or model.safetensors in this folder");
    }
  } else if (fs::path(path).extension() == ".json") {
    index_path = path;
  } else {
    c.add_file(std::make_unique<SafetensorsFile>(SafetensorsFile::open(path)));
    return c;
  }

  const std::string ip = index_path.string();
  const std::string text = read_text_file(ip, 256u << 20);
  const json index = parse_strict_json(text.data(), text.data() + text.size(), 3, ip);
  if (!index.is_object()) fail(ip, ": not a JSON object");
  const auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object())
    fail(ip, ": needs a \"weight_map\" object (tensor name -> shard file)");
  std::set<std::string> shards;
  for (const auto& [name, shard] : map_it->items()) {
    if (!shard.is_string()) fail(ip, ": weight_map entry '", name, "' is not a file name");
    const std::string file = shard.get<std::string>();
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
        file.find('\\') != std::string::npos || file.find('\0') != std::string::npos)
      fail(ip, ": weight_map entry '", name, "' names '", file,
           "', expected a plain file name in the index's folder");
    shards.insert(file);
  }
  const fs::path folder = index_path.parent_path();
  for (const std::string& shard : shards)
    c.add_file(std::make_unique<SafetensorsFile>(SafetensorsFile::open((folder / shard).string())));
  for (const auto& [name, shard] : map_it->items()) {
    const SafetensorsTensor* t = c.find(name);
    if (!t)
      fail(ip, ": tensor '", name, "' is listed in shard ", shard.get<std::string>(),
           " but is not there");
    if (fs::path(t->file).filename() != shard.get<std::string>())
      fail(ip, ": tensor '", name, "' is listed in shard ", shard.get<std::string>(), " but is in ",
           t->file);
  }
  if (c.index_.size() != map_it->size()) {
    for (const auto& file : c.files_)
      for (const SafetensorsTensor& t : file->tensors())
        if (!map_it->contains(t.name))
          fail(ip, ": tensor '", t.name, "' of ", file->path(), " is not listed in the weight_map");
  }
  return c;
}

void SafetensorsCheckpoint::add_file(std::unique_ptr<SafetensorsFile> file) {
  const size_t file_index = files_.size();
  for (size_t i = 0; i < file->tensors().size(); ++i) {
    const SafetensorsTensor& t = file->tensors()[i];
    const auto [it, inserted] = index_.emplace(t.name, std::make_pair(file_index, i));
    if (!inserted)
      fail(source_, ": tensor '", t.name, "' is in two shards: ", files_[it->second.first]->path(),
           " and ", file->path());
  }
  files_.push_back(std::move(file));
}

const SafetensorsTensor* SafetensorsCheckpoint::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &files_[it->second.first]->tensors()[it->second.second];
}

const SafetensorsTensor& SafetensorsCheckpoint::tensor(std::string_view name) const {
  const SafetensorsTensor* t = find(name);
  if (!t) fail(source_, ": no tensor '", name, "'");
  return *t;
}

std::vector<const SafetensorsTensor*> SafetensorsCheckpoint::tensors() const {
  std::vector<const SafetensorsTensor*> out;
  for (const auto& file : files_)
    for (const SafetensorsTensor& t : file->tensors()) out.push_back(&t);
  return out;
}

void SafetensorsCheckpoint::release_pages(const SafetensorsTensor& t, uint64_t offset,
                                          uint64_t n) const {
  const auto it = index_.find(t.name);
  if (it != index_.end()) files_[it->second.first]->release_pages(t, offset, n);
}

// --- writing ---

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  for (auto& [k, v] : metadata_)
    if (k == key) {
      v = value;
      return;
    }
  metadata_.emplace_back(key, value);
}

void SafetensorsWriter::add_tensor(const std::string& name, SafetensorsDtype dtype,
                                   const std::vector<int64_t>& shape, const void* data,
                                   size_t n_bytes) {
  if (name == "__metadata__") fail("safetensors writer: '__metadata__' cannot name a tensor");
  for (const Tensor& t : tensors_)
    if (t.name == name) fail("safetensors writer: tensor '", name, "' added twice");
  uint64_t n = safetensors_dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) fail("safetensors writer: tensor '", name, "' has a negative dimension");
    n *= uint64_t(d);
  }
  if (n != n_bytes)
    fail("safetensors writer: tensor '", name, "': ", n_bytes, " bytes given, the shape needs ", n);
  const auto* bytes = static_cast<const uint8_t*>(data);
  tensors_.push_back({name, dtype, shape, std::vector<uint8_t>(bytes, bytes + n_bytes)});
}

uint64_t SafetensorsWriter::data_bytes() const {
  uint64_t total = 0;
  for (const Tensor& t : tensors_) total += t.data.size();
  return total;
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, ": cannot create");
  const uint64_t n = text.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(text.data(), std::streamsize(text.size()));
  for (const Tensor& t : tensors_)
    out.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size()));
  out.close();
  if (!out) fail(path, ": write error");
}

void write_safetensors_index(const std::string& path,
                             const std::vector<std::pair<std::string, std::string>>& weight_map,
                             uint64_t total_size) {
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total_size}};
  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  for (const auto& [tensor, file] : weight_map) map[tensor] = file;
  index["weight_map"] = std::move(map);
  std::ofstream out(path, std::ios::trunc);
  if (!out) fail(path, ": cannot create");
  out << index.dump(2) << "\n";
  out.close();
  if (!out) fail(path, ": write error");
}

}  // namespace g4
