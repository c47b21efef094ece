// The hot loops for AArch64 with kernels.inl's NEON intrinsic paths (the q16 vertical pass,
// the two-tap pair rows, the int8 rows), where GCC's own vectorisation of the generic code
// misses the widening loads and table lookups. ASIMD is part of ARMv8-A, so any AArch64 CPU
// runs this; only built when targeting AArch64 (CMakeLists.txt).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <arm_neon.h>

#include "kernels.h"

#define EDGE_VARIANT "neon"
#define EDGE_NEON_INTRINSICS 1
namespace edge::detail::neon {
#include "kernels.inl"
}  // namespace edge::detail::neon
