#include "ops/kernels.h"

#include "core/error.h"

namespace g4 {

int act_block_size(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
      return 32;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return 256;
    default:
      return 0;
  }
}

namespace {

KernelTable make_table(CpuLevel level, void (*fill)(KernelTable&)) {
  KernelTable table;
  table.level = level;
  fill(table);
  return table;
}

}  // namespace

const KernelTable& kernel_table(CpuLevel level) {
  if (!cpu_level_supported(level))
    fail("this machine cannot run the ", cpu_level_name(level), " kernels");
  switch (level) {
    case CpuLevel::kScalar: {
      static const KernelTable table = make_table(level, fill_scalar_kernels);
      return table;
    }
#if defined(__x86_64__)
    case CpuLevel::kAvx2: {
      static const KernelTable table = make_table(level, fill_avx2_kernels);
      return table;
    }
    case CpuLevel::kAvx512: {
      static const KernelTable table = make_table(level, fill_avx512_kernels);
      return table;
    }
#endif
#if defined(__aarch64__)
    case CpuLevel::kNeon: {
      static const KernelTable table = make_table(level, fill_neon_kernels);
      return table;
    }
    case CpuLevel::kNeonDotprod: {
      static const KernelTable table = make_table(level, fill_neon_dotprod_kernels);
      return table;
    }
#endif
    default:
      break;
  }
  fail("this build has no ", cpu_level_name(level), " kernels");
}

const KernelTable& active_kernels() {
  static const KernelTable& table = kernel_table(selected_cpu_level());
  return table;
}

}  // namespace g4
