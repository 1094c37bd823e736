// A hand encoder for GGUF bytes, independent of GgufWriter, for tests that need files the writer
// refuses to produce (duplicates, hostile counts, bad types...). Layout from spec §4.1.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "formats/gguf.h"

namespace g4::test {

class GgufBytes {
 public:
  std::vector<uint8_t> bytes;

  GgufBytes& raw(std::string_view s) {
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  template <class T>
  GgufBytes& put(T value) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &value, sizeof(T));
    return *this;
  }
  GgufBytes& u8(uint8_t v) { return put(v); }
  GgufBytes& u32(uint32_t v) { return put(v); }
  GgufBytes& u64(uint64_t v) { return put(v); }
  GgufBytes& str(std::string_view s) { return u64(s.size()).raw(s); }
  GgufBytes& type(GgufValueType t) { return u32(uint32_t(t)); }

  // magic, version, tensor count, metadata count
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kvs, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kvs);
  }
  GgufBytes& kv_u32(std::string_view key, uint32_t v) {
    return str(key).type(GgufValueType::U32).u32(v);
  }
  GgufBytes& kv_string(std::string_view key, std::string_view v) {
    return str(key).type(GgufValueType::STRING).str(v);
  }
  // name, dims (ggml order), ggml type id, offset
  GgufBytes& tensor_info(std::string_view name, std::vector<uint64_t> dims, uint32_t type_id,
                         uint64_t offset) {
    str(name).u32(uint32_t(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type_id).u64(offset);
  }
  GgufBytes& pad_to(size_t alignment) {
    bytes.resize((bytes.size() + alignment - 1) / alignment * alignment, 0);
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    bytes.resize(bytes.size() + n, 0);
    return *this;
  }
};

}  // namespace g4::test
