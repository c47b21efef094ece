// The NEON variant with the int8 rows on SDOT (vdotq_s32), compiled with
// -march=armv8.2-a+dotprod (CMakeLists.txt) for this file only; dispatch.cpp calls it only
// when the kernel reports HWCAP_ASIMDDP. Every CPU with the dot product extension is ARMv8.2
// or later, so the rest of the ARMv8.2 instructions the compiler may pick are there too.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <arm_neon.h>

#include "kernels.h"

#define EDGE_VARIANT "dotprod"
#define EDGE_NEON_INTRINSICS 1
#define EDGE_NEON_DOTPROD 1
namespace edge::detail::dotprod {
#include "kernels.inl"
}  // namespace edge::detail::dotprod
