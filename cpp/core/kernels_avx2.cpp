// The same hot loops compiled with -mavx2 -mfma (set in CMakeLists.txt); only ever
// called after dispatch.cpp checked that the CPU has both.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <immintrin.h>

#include "kernels.h"

namespace edge::detail::avx2 {
#include "kernels.inl"
}  // namespace edge::detail::avx2
