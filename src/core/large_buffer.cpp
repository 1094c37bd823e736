#include "core/large_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace g4 {

LargeBuffer::LargeBuffer(size_t bytes, Fill fill) : size_(bytes) {
  if (bytes == 0) return;
  constexpr size_t kPage = 4096, kHugePage = size_t(2) << 20;
  mapped_ = (bytes + kPage - 1) / kPage * kPage;
  // A big buffer starts on a huge-page boundary: the kernel backs a huge page only where the whole
  // 2 MiB range lies inside the mapping, so an unaligned start leaves its first up to 2 MiB in 4 KiB
  // pages (each a TLB miss, and a stop for the hardware prefetcher, when weights stream past).
  const bool huge = bytes >= 2 * kHugePage;
  const size_t reserve = huge ? mapped_ + kHugePage : mapped_;
  void* p = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("cannot allocate ", bytes, " bytes: ", std::strerror(errno));
  uint8_t* start = static_cast<uint8_t*>(p);
  if (huge) {  // unmap the parts before the boundary and after the buffer
    uint8_t* aligned = start + (kHugePage - reinterpret_cast<uintptr_t>(start) % kHugePage) % kHugePage;
    if (aligned > start) ::munmap(start, size_t(aligned - start));
    const size_t after = size_t(start + reserve - (aligned + mapped_));
    if (after > 0) ::munmap(aligned + mapped_, after);
    start = aligned;
  }
  data_ = start;
#ifdef MADV_HUGEPAGE
  if (huge) ::madvise(data_, mapped_, MADV_HUGEPAGE);  // a hint: fine if refused
#endif
  // Commit now (anonymous pages read as zero but are only backed once written), so running out of
  // memory shows at start-up, not half way through a long generation.
  if (fill == Fill::kZeroed) std::memset(data_, 0, bytes);
}

LargeBuffer::~LargeBuffer() { release(); }

LargeBuffer::LargeBuffer(LargeBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

LargeBuffer& LargeBuffer::operator=(LargeBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

void LargeBuffer::release() {
  if (data_) ::munmap(data_, mapped_);
  data_ = nullptr;
  size_ = mapped_ = 0;
}

}  // namespace g4
