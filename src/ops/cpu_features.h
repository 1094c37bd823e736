// Which SIMD kernels this machine can run, chosen once at run time (the binary itself targets the
// baseline ISA: x86-64 or armv8-a, so it runs anywhere).
//
// G4_CPU=scalar|avx2|avx512|neon|neon-dotprod forces a level (tests and benchmarks); a level this
// build or this CPU lacks is an error, not a silent fallback.
#pragma once

#include <vector>

namespace g4 {

enum class CpuLevel {
  kScalar,       // portable C++, the reference every SIMD kernel is tested against
  kAvx2,         // x86-64 with AVX2 + FMA + F16C
  kAvx512,       // kAvx2 plus AVX-512 F/BW/VL and VNNI (Zen 4+, Ice Lake / Sapphire Rapids+)
  kNeon,         // aarch64 baseline Advanced SIMD
  kNeonDotprod,  // aarch64 with the dot-product extension (SDOT, Armv8.2+, every Apple M-series)
};

const char* cpu_level_name(CpuLevel level);  // "scalar", "avx2", "avx512", "neon", "neon-dotprod"

// True when this binary has kernels for `level` and this CPU can run them.
bool cpu_level_supported(CpuLevel level);

// Every supported level, scalar first, best last.
std::vector<CpuLevel> supported_cpu_levels();

// The level G4_CPU names, else the best supported one. Throws g4::Error for an unknown name or a
// level this machine cannot run.
CpuLevel selected_cpu_level();

}  // namespace g4
