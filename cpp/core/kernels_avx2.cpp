// The same hot loops compiled with -mavx2 -mfma (set in CMakeLists.txt), with kernels.inl's
// AVX2 intrinsic paths; only ever called after dispatch.cpp checked that the CPU has both.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <immintrin.h>

#include "kernels.h"

#define EDGE_VARIANT "avx2"
namespace edge::detail::avx2 {
#include "kernels.inl"
}  // namespace edge::detail::avx2
