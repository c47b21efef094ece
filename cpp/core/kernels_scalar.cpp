// The reference: every kernel of the table as the plain loop its contract in kernels.h
// describes, one value at a time, written to be read rather than to be fast. Compiled with
// vectorisation and floating-point contraction off (CMakeLists.txt), so it is the same
// sequence of IEEE operations on every target. cpp/tests/ checks every other variant against
// it; EDGE_ISA=scalar runs the library on it.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels.h"

namespace edge::detail::scalar {
namespace {

// The horizontal pass's weights are laid out for this many lanes (preprocess.cpp reads it).
constexpr int kLanes = 4;

void vertical(float* acc, const std::uint8_t* const* rows, const float* w, int nrows, int n) {
  for (int i = 0; i < n; ++i) {
    float sum = 0.f;
    for (int k = 0; k < nrows; ++k) sum += w[k] * static_cast<float>(rows[k][i]);
    acc[i] = sum;
  }
}

// Each term is (x << 8) * w >> 16, truncated; the weights sum to at most 1 (65536), so the
// sum of the terms is at most 65280 and fits the 16 bits the vector variants add it in.
void vertical_q16(float* out, std::uint16_t* /*acc*/, const std::uint8_t* const* rows,
                  const std::uint16_t* w, int nrows, int n) {
  for (int i = 0; i < n; ++i) {
    std::uint32_t sum = 0;
    for (int k = 0; k < nrows; ++k)
      sum += (static_cast<std::uint32_t>(rows[k][i]) << 8) * w[k] >> 16;
    out[i] = static_cast<float>(sum) * (1.f / 256.f);
  }
}

// Source channel of output colour c; a single channel has no order to reverse (the plan
// asks for `reversed` with grey sources too).
int channel_of(int c, int channels, bool reversed) { return reversed && channels > 1 ? 2 - c : c; }

// Vector k of a tap covers pixels start + k * P .. + P - 1 (P = kLanes / channels), with
// weights lane_weights[(first + k) * P + p].
void horizontal(float* out, const float* acc, int channels, bool reversed, const LaneTap* taps,
                const float* lane_weights, int out_w) {
  const int P = kLanes / channels;
  const int colours = channels == 1 ? 1 : 3;
  for (int x = 0; x < out_w; ++x) {
    const LaneTap& t = taps[x];
    for (int c = 0; c < colours; ++c) {
      float sum = 0.f;
      for (int k = 0; k < t.vectors; ++k) {
        for (int p = 0; p < P; ++p) {
          const std::ptrdiff_t pixel = t.start + k * P + p;
          const float weight = lane_weights[static_cast<std::ptrdiff_t>(t.first + k) * P + p];
          sum += weight * acc[pixel * channels + channel_of(c, channels, reversed)];
        }
      }
      out[static_cast<std::ptrdiff_t>(x) * colours + c] = sum;
    }
  }
}

void pair_row(float* out, const std::uint8_t* row, const std::uint8_t* /*ahead*/,
              int /*row_bytes*/, int channels, bool reversed, int planes, const PairTaps& taps,
              int out_w) {
  for (int x = 0; x < out_w; ++x) {
    const std::uint8_t* left = row + taps.left[x];
    for (int c = 0; c < planes; ++c) {
      const int ch = channel_of(c, channels, reversed);
      const float l = taps.left_weight[x] * static_cast<float>(left[ch]);
      const float r = taps.right_weight[x] * static_cast<float>(left[channels + ch]);
      out[static_cast<std::ptrdiff_t>(c) * out_w + x] = l + r;
    }
  }
}

void blend(float* out, const float* a, float wa, const float* b, float wb, int n) {
  for (int i = 0; i < n; ++i) out[i] = wa * a[i] + wb * b[i];
}

// Value of output channel c of pixel x, in output units before rounding.
float mapped(const float* vals, bool planes, int x, int c, int out_w, const StoreParams& p) {
  auto val = [&](int ch) {
    return planes ? vals[static_cast<std::ptrdiff_t>(ch) * out_w + x]
                  : vals[static_cast<std::ptrdiff_t>(x) * p.vals_channels + ch];
  };
  float v;
  if (p.vals_channels == p.out_channels) v = val(c);
  else if (p.vals_channels == 1) v = val(0);  // grey replicated
  else v = 0.299f * val(0) + 0.587f * val(1) + 0.114f * val(2);  // BT.601 luma
  return v * p.gain[c] + p.bias[c];
}

void store_any(void* out, std::size_t first, const float* vals, int out_w, const StoreParams& p,
               bool planes) {
  const int oc = p.out_channels;
  for (int x = 0; x < out_w; ++x) {
    for (int c = 0; c < oc; ++c) {
      const float y = mapped(vals, planes, x, c, out_w, p);
      const std::size_t pixel = first + static_cast<std::size_t>(x);
      // One channel is one plane: both layouts write the same bytes.
      const std::size_t at = p.layout == Layout::NHWC || oc == 1
                                 ? pixel * static_cast<std::size_t>(oc) + static_cast<std::size_t>(c)
                                 : static_cast<std::size_t>(c) * p.plane + pixel;
      if (p.dtype == DType::F32) {
        static_cast<float*>(out)[at] = y;
        continue;
      }
      // Clamped, then rounded half to even (the default rounding mode).
      const float clamped = std::fmin(std::fmax(y, p.lo), p.hi);
      const int v = static_cast<int>(std::nearbyint(clamped));
      if (p.dtype == DType::U8) static_cast<std::uint8_t*>(out)[at] = static_cast<std::uint8_t>(v);
      else static_cast<std::int8_t*>(out)[at] = static_cast<std::int8_t>(v);
    }
  }
}

void store(void* out, std::size_t first, const float* vals, int out_w, const StoreParams& p) {
  store_any(out, first, vals, out_w, p, false);
}
void store_planes(void* out, std::size_t first, const float* vals, int out_w,
                  const StoreParams& p) {
  store_any(out, first, vals, out_w, p, true);
}

void matvec(float* y, const float* A, int rows, int cols, const float* x, bool lower) {
  for (int r = 0; r < rows; ++r) {
    const int len = lower ? r + 1 : cols;
    float sum = 0.f;
    for (int i = 0; i < len; ++i) sum += A[static_cast<std::ptrdiff_t>(r) * cols + i] * x[i];
    y[r] = sum;
  }
}

void int8_rows(float* y, const std::int8_t* codes, const float* scales, int rows, int cols,
               const float* x) {
  for (int r = 0; r < rows; ++r) {
    float sum = 0.f;
    for (int i = 0; i < cols; ++i)
      sum += static_cast<float>(codes[static_cast<std::ptrdiff_t>(r) * cols + i]) * x[i];
    y[r] = sum * scales[r];
  }
}

}  // namespace

const Kernels kernels{"scalar", kLanes, &vertical, &vertical_q16, &horizontal, &pair_row,
                      &blend,   &store,  &store_planes, &matvec,    &int8_rows};

}  // namespace edge::detail::scalar
