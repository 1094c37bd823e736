// safetensors: Hugging Face's tensor file format (spec: ../shared/spec/formats.md §4.3), and
// checkpoints sharded over several such files (model.safetensors.index.json).
//
// File layout: u64 N (little-endian) · N bytes of UTF-8 JSON · the byte buffer. The JSON maps
// tensor names to {"dtype", "shape", "data_offsets": [begin, end)} (offsets relative to the
// buffer), plus an optional "__metadata__" object of string -> string.
//
// SafetensorsFile maps a file read-only and validates the whole header before anything is used:
// N within the file and at most 100 MB, valid UTF-8 JSON, no duplicate keys (at any level), a
// known dtype for every tensor, shape x dtype size == the byte range, every range inside the
// buffer, and the ranges neither overlapping nor leaving holes (what the reference
// implementation requires too). Tensors are then pointers into the mapping (no copies).
// Every error is a g4::Error naming the file and, where there is one, the tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/ggml_type.h"
#include "core/mapped_file.h"

namespace g4 {

// The dtypes of the safetensors format with a fixed byte size per element. Sub-byte dtypes
// (F4, F6_*) are refused at open with a message naming them.
enum class SafetensorsDtype : uint8_t {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  I64,
  U64,
  F64,
};

const char* safetensors_dtype_name(SafetensorsDtype dtype);  // "BF16"
size_t safetensors_dtype_size(SafetensorsDtype dtype);       // bytes per element
std::optional<SafetensorsDtype> safetensors_dtype_from_name(std::string_view name);
// The ggml type with the same element encoding (F32, F16, BF16), which is what the engine can
// read in place; nullopt for the others.
std::optional<GgmlType> safetensors_dtype_to_ggml(SafetensorsDtype dtype);

// The reference implementation's header limit.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::F32;
  std::vector<int64_t> shape;  // PyTorch order: the last dimension is contiguous
  uint64_t begin = 0;          // data_offsets, relative to the byte buffer; end exclusive
  uint64_t end = 0;
  const uint8_t* data = nullptr;  // into the mapping; valid while the file lives
  std::string file;               // path of the file holding it, for messages

  // Cannot overflow: the reader checked the product against the byte range.
  int64_t n_elements() const;
  uint64_t n_bytes() const { return end - begin; }
  std::string shape_string() const;  // "[3840, 262144]"
};

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws g4::Error naming the file and the problem.
  static SafetensorsFile open(const std::string& path);
  // Validates an image held in memory (copied into an aligned buffer); `name` stands in for the
  // path in messages. For tests and fuzzers.
  static SafetensorsFile from_bytes(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
  size_t data_offset() const { return data_offset_; }  // 8 + N: start of the byte buffer

  // Ordered by data offset.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  // Throws g4::Error "<file>: no tensor '<name>'" when absent.
  const SafetensorsTensor& tensor(std::string_view name) const;
  // "__metadata__", in key order.
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }

  // Tells the kernel the pages of bytes [offset, offset + n) of `t` are not needed any more
  // (they are read again from disk if touched later): keeps the resident memory of a streaming
  // conversion bounded. Pages only partly inside the range are kept.
  void release_pages(const SafetensorsTensor& t, uint64_t offset = 0,
                     uint64_t n = UINT64_MAX) const;

 private:
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  SafetensorsFile() = default;
  void parse();

  MappedFile file_;
  std::unique_ptr<uint8_t[], AlignedFree> owned_;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// One checkpoint: a single .safetensors file, or shards listed by model.safetensors.index.json
// ({"metadata": {...}, "weight_map": {tensor: shard file}}). Shard names must be plain file
// names in the index's folder. Every tensor must be in exactly one shard, and in the shard the
// index names.
class SafetensorsCheckpoint {
 public:
  // `path`: a .safetensors file, an index .json file, or a folder holding
  // model.safetensors.index.json or model.safetensors.
  static SafetensorsCheckpoint open(const std::string& path);

  const std::string& source() const { return source_; }  // what was opened, for messages
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  size_t size() const { return index_.size(); }

  const SafetensorsTensor* find(std::string_view name) const;
  // Throws g4::Error "<source>: no tensor '<name>'" when absent.
  const SafetensorsTensor& tensor(std::string_view name) const;
  // Every tensor, shard by shard, in data order.
  std::vector<const SafetensorsTensor*> tensors() const;
  void release_pages(const SafetensorsTensor& t, uint64_t offset = 0,
                     uint64_t n = UINT64_MAX) const;

 private:
  void add_file(std::unique_ptr<SafetensorsFile> file);
  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, std::pair<size_t, size_t>> index_;  // name -> (file, tensor)
};

// Writes safetensors files (tests write Hugging Face-layout checkpoints with it). Tensors are
// stored in insertion order; the JSON header is padded with spaces to a multiple of 8 bytes so
// the buffer is 8-aligned, as the reference writer does.
class SafetensorsWriter {
 public:
  void set_metadata(const std::string& key, const std::string& value);
  // Copies the bytes; n_bytes must equal the element count times the dtype size.
  void add_tensor(const std::string& name, SafetensorsDtype dtype,
                  const std::vector<int64_t>& shape, const void* data, size_t n_bytes);
  uint64_t data_bytes() const;
  // Throws g4::Error when the file cannot be written.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    SafetensorsDtype dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::vector<Tensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// Writes a model.safetensors.index.json: weight_map lists (tensor name, shard file name).
void write_safetensors_index(const std::string& path,
                             const std::vector<std::pair<std::string, std::string>>& weight_map,
                             uint64_t total_size);

}  // namespace g4
