// The hot loops for the baseline CPU of the target (SSE2 on x86-64, NEON on AArch64).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels.h"

namespace edge::detail::baseline {
#include "kernels.inl"
}  // namespace edge::detail::baseline
