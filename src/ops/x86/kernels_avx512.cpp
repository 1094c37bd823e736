// The x86 kernels with AVX-512 F/BW/VL and VNNI (compiled with those flags on top of AVX2's). The
// code is kernels_x86.inc.
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || \
    !defined(__AVX512VNNI__) || !defined(__FMA__) || !defined(__F16C__)
#error \
    "kernels_avx512.cpp must be compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c"
#endif
// GCC 12's AVX-512 headers self-initialise their "undefined" vectors, which -Wmaybe-uninitialized
// reports wherever they are inlined (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define G4_X86_AVX512 1
#define G4_X86_FILL fill_avx512_kernels
#include "ops/x86/kernels_x86.inc"
