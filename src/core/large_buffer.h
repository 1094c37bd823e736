// A large zero-filled buffer, committed up front and backed by huge pages where the kernel allows
// (madvise): the KV cache of a long context is gigabytes, and faulting it in 4 KiB at a time costs
// seconds and TLB misses on every attention pass.
#pragma once

#include <cstddef>
#include <cstdint>

namespace g4 {

class LargeBuffer {
 public:
  LargeBuffer() = default;
  // Throws g4::Error when the memory cannot be had. kZeroed commits every page now; kUncommitted
  // leaves that to the caller, who is about to write every byte (and may do it on many threads,
  // which then share the cost of the page faults).
  enum class Fill { kZeroed, kUncommitted };
  explicit LargeBuffer(size_t bytes, Fill fill = Fill::kZeroed);
  ~LargeBuffer();
  LargeBuffer(LargeBuffer&& other) noexcept;
  LargeBuffer& operator=(LargeBuffer&& other) noexcept;
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

}  // namespace g4
