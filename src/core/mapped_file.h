// A read-only memory map of a whole file. Tensors are used in place from it (no copy at load).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace g4 {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws g4::Error naming the path and errno
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Tells the kernel that the pages of [data, data + n) of a read-only file mapping are not needed
// for now: they leave the resident set and are read again from the file if touched. Pages only
// partly inside the range are kept. Streaming converters use it to keep memory bounded. Only for
// file mappings: on anonymous memory the kernel would discard the contents.
void release_mapped_pages(const void* data, size_t n);

}  // namespace g4
