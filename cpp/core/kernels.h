// Internal to the core: the hot loops (preprocessing, and the dot products of the OOD
// scores) as one table per variant, chosen once per process at run time (dispatch.cpp):
//   scalar    kernels_scalar.cpp: plain loops, not vectorised; the reference every other
//             variant is tested against (cpp/tests/)
//   baseline  kernels.inl for the target's base ISA (SSE2 on x86-64, ASIMD on AArch64)
//   avx2      kernels.inl with AVX2+FMA (x86-64)
//   neon      kernels.inl with its NEON intrinsic paths (AArch64)
//   dotprod   neon, with the int8 rows on SDOT (AArch64 with ARMv8.2 dot product)
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "preprocess.h"

namespace edge::detail {

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

// The horizontal taps of one output pixel, laid out for Kernels::horizontal.
struct LaneTap {
  int start = 0;    // first source pixel
  int vectors = 0;  // how many weight vectors
  int first = 0;    // index of the first of them
};

// A two-tap horizontal filter read straight from a row of bytes: output pixel x is
// left_weight[x] * pixel p + right_weight[x] * pixel p + 1, where p starts at byte left[x]
// of the row. Pixel p + 1 always lies in the row.
// The two taps of each output pixel: the byte offset of its left source pixel in the row, and
// the weights of it and of the pixel to its right. `left` never decreases along the row (a
// resize maps output pixels to source pixels in order): the vector variants rely on it to find,
// from the last pixel alone, where the row's end leaves no room for a whole load.
struct PairTaps {
  const int* left = nullptr;
  const float* left_weight = nullptr;
  const float* right_weight = nullptr;
};

// Filtered rows hold 1, 3 or 4 channels per pixel. The output colours are channels 0, 1, 2
// in that order, or 2, 1, 0 when `reversed` (BGR to RGB and back); alpha is dropped.
struct Kernels {
  const char* name;
  // Floats per vector of the horizontal pass (8 with AVX2, 4 otherwise).
  int lanes;
  // acc[i] = sum_k w[k] * rows[k][i] for i < n.
  void (*vertical)(float* acc, const std::uint8_t* const* rows, const float* w, int nrows, int n);
  // The same in fixed point (w in 0.16, summing to at most 1), `acc` holding n 8.8 partial
  // sums on the way; the result lands in `out` in float pixel units.
  void (*vertical_q16)(float* out, std::uint16_t* acc, const std::uint8_t* const* rows,
                       const std::uint16_t* w, int nrows, int n);
  // The horizontal pass on a row of C = `channels` floats per pixel. Output pixel x sums
  // taps[x].vectors products of `lanes` consecutive floats of `acc`, the k-th starting
  // k * (lanes / C) pixels after pixel taps[x].start, with weight vector taps[x].first + k of
  // `lane_weights` (`lanes` floats each, lane l weighting channel l % C of its pixel; zero
  // past the taps). The lanes then fold into out[x] (C == 1) or out[x*3 .. x*3 + 3) in output
  // colour order; out needs one float of slack, acc `lanes` floats of finite values.
  void (*horizontal)(float* out, const float* acc, int channels, bool reversed,
                     const LaneTap* taps, const float* lane_weights, int out_w);

  // The two-tap filter of one row of `channels` bytes per pixel, `row_bytes` long, for out_w
  // output pixels, written as `planes` (1 or 3) planes of output colours, out_w floats apart.
  // The same bytes of row `ahead` (unless null), to be filtered next, are prefetched on the way.
  void (*pair_row)(float* out, const std::uint8_t* row, const std::uint8_t* ahead,
                   int row_bytes, int channels, bool reversed, int planes, const PairTaps& taps,
                   int out_w);
  // out[i] = wa * a[i] + wb * b[i] for i < n.
  void (*blend)(float* out, const float* a, float wa, const float* b, float wb, int n);

  // Maps, normalises, rounds and stores out_w pixels starting at output pixel `first`, from
  // vals[x * vals_channels + c] (store) or from planes out_w floats apart (store_planes).
  void (*store)(void* out, std::size_t first, const float* vals, int out_w,
                const StoreParams& p);
  void (*store_planes)(void* out, std::size_t first, const float* vals, int out_w,
                       const StoreParams& p);

  // y[r] = dot(A[r, 0:row_len(r)], x) for r < rows; A row-major with `cols` columns, and
  // row_len(r) = cols, or r + 1 when `lower` (a lower-triangular matrix).
  void (*matvec)(float* y, const float* A, int rows, int cols, const float* x, bool lower);
  // y[r] = scales[r] * dot(codes[r, :], x) for r < rows; codes row-major, `cols` per row.
  void (*int8_rows)(float* y, const std::int8_t* codes, const float* scales, int rows, int cols,
                    const float* x);
};

// Each variant's table; only those built for the target exist (variants() lists them).
namespace scalar {
extern const Kernels kernels;
}
namespace baseline {
extern const Kernels kernels;
}
namespace avx2 {
extern const Kernels kernels;
}
namespace neon {
extern const Kernels kernels;
}
namespace dotprod {
extern const Kernels kernels;
}

// The table in use: EDGE_ISA's variant, else the fastest this CPU runs.
const Kernels& kernels();

// The variants built into this library that this CPU can run, slowest first. Tests loop
// over them; the error for a bad EDGE_ISA names them.
std::vector<const Kernels*> runnable_variants();
// Every variant name the library knows, built for this target or not.
const char* const* known_variants();

}  // namespace edge::detail
