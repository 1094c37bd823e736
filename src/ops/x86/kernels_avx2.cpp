// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c). The code is kernels_x86.inc.
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "kernels_avx2.cpp must be compiled with -mavx2 -mfma -mf16c"
#endif
#define G4_X86_AVX512 0
#define G4_X86_FILL fill_avx2_kernels
#include "ops/x86/kernels_x86.inc"
