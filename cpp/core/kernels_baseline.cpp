// The hot loops for the baseline CPU of the target (SSE2 on x86-64, ASIMD on AArch64): the
// generic code of kernels.inl as the compiler vectorises it, no intrinsics.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels.h"

#define EDGE_VARIANT "baseline"
namespace edge::detail::baseline {
#include "kernels.inl"
}  // namespace edge::detail::baseline
