// libFuzzer target for the GGUF reader (build with -DG4_BUILD_FUZZERS=ON and clang++; see
// fuzz/README.md). Every input must either load or throw g4::Error; whatever loads must be safe
// to read in full and its metadata must be accepted by the writer (shared validation).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/gguf.h"
#include "gguf_touch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const g4::GgufFile file = g4::GgufFile::from_bytes(data, size, "fuzz-input");
    g4::fuzz::touch_everything(file);
    g4::GgufWriter writer;
    for (const g4::GgufKv& kv : file.metadata())
      if (!kv.key.empty()) writer.copy_kv(file, kv);  // must not throw: same validation
  } catch (const g4::Error&) {
    // Rejected with a message: the expected outcome for most inputs.
  }
  return 0;
}
