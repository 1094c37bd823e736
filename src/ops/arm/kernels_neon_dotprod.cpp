// NEON kernels with the dot-product extension (compiled with -march=armv8.2-a+dotprod, chosen at
// run time only where the CPU has it). The code is kernels_neon.inc.
#if !defined(__ARM_FEATURE_DOTPROD)
#error "kernels_neon_dotprod.cpp must be compiled with -march=armv8.2-a+dotprod"
#endif
#define G4_NEON_FILL fill_neon_dotprod_kernels
#include "ops/arm/kernels_neon.inc"
