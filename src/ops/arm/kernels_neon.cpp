// NEON kernels at the armv8-a baseline (no SDOT). The code is kernels_neon.inc.
#define G4_NEON_FILL fill_neon_kernels
#include "ops/arm/kernels_neon.inc"
