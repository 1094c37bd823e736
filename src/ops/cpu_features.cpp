#include "ops/cpu_features.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

namespace g4 {

const char* cpu_level_name(CpuLevel level) {
  switch (level) {
    case CpuLevel::kScalar:
      return "scalar";
    case CpuLevel::kAvx2:
      return "avx2";
    case CpuLevel::kAvx512:
      return "avx512";
    case CpuLevel::kNeon:
      return "neon";
    case CpuLevel::kNeonDotprod:
      return "neon-dotprod";
  }
  return "?";
}

bool cpu_level_supported(CpuLevel level) {
  switch (level) {
    case CpuLevel::kScalar:
      return true;
    case CpuLevel::kAvx2:
#if defined(__x86_64__)
      // libgcc's checks include the OS saving the YMM state (XGETBV), not just CPUID.
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
#else
      return false;
#endif
    case CpuLevel::kAvx512:
#if defined(__x86_64__)
      // libgcc checks that the OS saves the ZMM and mask state too (XCR0), not just CPUID.
      return cpu_level_supported(CpuLevel::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
#else
      return false;
#endif
    case CpuLevel::kNeon:
#if defined(__aarch64__)
      return true;  // Advanced SIMD is part of the aarch64 baseline
#else
      return false;
#endif
    case CpuLevel::kNeonDotprod:
#if defined(__aarch64__) && defined(__linux__)
      return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__aarch64__) && defined(__APPLE__)
      return true;  // every Apple Silicon core has it
#else
      return false;
#endif
  }
  return false;
}

std::vector<CpuLevel> supported_cpu_levels() {
  std::vector<CpuLevel> levels;
  for (CpuLevel level : {CpuLevel::kScalar, CpuLevel::kNeon, CpuLevel::kNeonDotprod,
                         CpuLevel::kAvx2, CpuLevel::kAvx512})
    if (cpu_level_supported(level)) levels.push_back(level);
  return levels;
}

CpuLevel selected_cpu_level() {
  const char* env = std::getenv("G4_CPU");
  if (!env || !*env) return supported_cpu_levels().back();
  const std::string name = env;
  for (CpuLevel level : {CpuLevel::kScalar, CpuLevel::kAvx2, CpuLevel::kAvx512, CpuLevel::kNeon,
                         CpuLevel::kNeonDotprod}) {
    if (name != cpu_level_name(level)) continue;
    if (!cpu_level_supported(level))
      fail(
          "G4_CPU=", name, ": this machine or this build cannot run that level (supported here: ",
          [] {
            std::string s;
            for (CpuLevel l : supported_cpu_levels())
              s += std::string(s.empty() ? "" : ", ") + cpu_level_name(l);
            return s;
          }(),
          ")");
    return level;
  }
  fail("G4_CPU=", name,
       " is not a kernel level (expected scalar, avx2, avx512, neon or neon-dotprod)");
}

}  // namespace g4
