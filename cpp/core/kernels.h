// Internal to the core: the hot loops (preprocessing, and the dot products of the OOD
// scores), compiled once per instruction set (kernels_baseline.cpp, kernels_avx2.cpp) and
// chosen at run time (dispatch.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "preprocess.h"

namespace edge::detail {

// One output sample of a separable resampling filter: `count` source samples from
// `start`, weighted by weights[offset .. offset + count).
struct Tap {
  int start = 0;
  int count = 0;
  int offset = 0;
};

// How filtered pixels become output values.
struct StoreParams {
  int vals_channels = 3;  // values per filtered pixel, in output colour order: 1 or 3
  int out_channels = 3;   // 1 or 3; 3 from 1 replicates grey, 1 from 3 takes BT.601 luma
  float gain[3] = {1, 1, 1};
  float bias[3] = {0, 0, 0};
  float lo = 0.f, hi = 255.f;    // clamp range of integer outputs
  DType dtype = DType::U8;
  Layout layout = Layout::NHWC;
  std::size_t plane = 0;         // H*W of the output, for NCHW
};

struct Kernels {
  // acc[i] = sum_k w[k] * rows[k][i] for i < n.
  void (*vertical)(float* acc, const std::uint8_t* const* rows, const float* w, int nrows, int n);
  // The same in fixed point (w in 0.16, summing to at most 1), `acc` holding n 8.8 partial
  // sums on the way; the result lands in `out` in float pixel units.
  void (*vertical_q16)(float* out, std::uint16_t* acc, const std::uint8_t* const* rows,
                       const std::uint16_t* w, int nrows, int n);
  // s[c] = sum_t weights[taps[x].offset + t] * acc[(taps[x].start + t)*C + c]; then
  // out[x] = s[0] for C == 1, else out[x*3 + c] = s[order[c]]. acc needs one float of slack.
  void (*horizontal)(float* out, const float* acc, int channels, const int* order,
                     const Tap* taps, const float* weights, int out_w);

  // Maps, normalises, rounds and stores out_w pixels starting at output pixel `first`.
  void (*store)(void* out, std::size_t first, const float* vals, int out_w,
                const StoreParams& p);

  // y[r] = dot(A[r, 0:row_len(r)], x) for r < rows; A row-major with `cols` columns, and
  // row_len(r) = cols, or r + 1 when `lower` (a lower-triangular matrix).
  void (*matvec)(float* y, const float* A, int rows, int cols, const float* x, bool lower);
};

namespace baseline {
extern const Kernels kernels;
}
namespace avx2 {
extern const Kernels kernels;
}

const Kernels& kernels();

}  // namespace edge::detail
