// Touches everything a loaded GgufFile exposes: every getter on every key (wrong-type errors are
// expected and swallowed), every rendering, every byte of every tensor. Shared by the libFuzzer
// target and tests/test_gguf_fuzz.cpp: whatever the reader accepted must be safe to use.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"
#include "formats/gguf.h"

namespace g4::fuzz {

template <class Fn>
void attempt(uint64_t& sink, Fn&& fn) {
  try {
    sink += uint64_t(fn());
  } catch (const g4::Error& e) {
    sink += std::string(e.what()).size();
  }
}

// Returns a value depending on everything read so the compiler cannot drop the reads.
inline uint64_t touch_everything(const GgufFile& file) {
  uint64_t sink = file.version() + file.alignment() + file.data_offset();
  for (const GgufKv& kv : file.metadata()) {
    sink += file.value_to_string(kv, 3).size();
    sink += file.value_to_string(kv, 100000).size();
    sink += file.has(kv.key) ? 1 : 0;
    const std::string& k = kv.key;
    attempt(sink, [&] { return file.get_string(k).size(); });
    attempt(sink, [&] { return file.get_string_view(k).size(); });
    attempt(sink, [&] { return file.get_int(k); });
    attempt(sink, [&] { return file.get_uint(k); });
    attempt(sink, [&] { return file.get_float(k) != 0.0; });
    attempt(sink, [&] { return file.get_bool(k); });
    attempt(sink, [&] {
      uint64_t n = 0;
      for (const std::string& s : file.get_string_array(k)) n += s.size();
      return n;
    });
    attempt(sink, [&] {
      uint64_t n = 0;
      for (int64_t v : file.get_int_array(k)) n += uint64_t(v);
      return n;
    });
    attempt(sink, [&] { return file.get_float_array(k).size(); });
    attempt(sink, [&] { return file.get_bool_array(k).size(); });
    attempt(sink, [&] { return file.get_string_opt(k).has_value(); });
    attempt(sink, [&] { return file.get_int_opt(k).value_or(0); });
    attempt(sink, [&] { return file.get_uint_opt(k).value_or(0); });
    attempt(sink, [&] { return file.get_float_opt(k).value_or(0.0) != 0.0; });
    attempt(sink, [&] { return file.get_bool_opt(k).value_or(false); });
  }
  for (const GgufTensorInfo& t : file.tensors()) {
    sink += t.shape_string().size() + uint64_t(t.n_elements());
    sink += file.find_tensor(t.name) == &t ? 1 : 0;
    for (uint64_t i = 0; i < t.n_bytes; ++i) sink += t.data[i];
  }
  return sink;
}

}  // namespace g4::fuzz
