// The hot loops of preprocessing, written once as plain loops the compiler vectorises.
// Included inside a namespace by each per-ISA translation unit; no includes here.

namespace {

void vertical(float* __restrict acc, const std::uint8_t* const* rows, const float* w, int nrows,
              int n) {
  // Two source rows per sweep halves the traffic on `acc`.
  int k = 0;
  if (nrows >= 2) {
    const std::uint8_t* __restrict a = rows[0];
    const std::uint8_t* __restrict b = rows[1];
    const float wa = w[0], wb = w[1];
    for (int i = 0; i < n; ++i) acc[i] = wa * static_cast<float>(a[i]) + wb * static_cast<float>(b[i]);
    k = 2;
  } else {
    const std::uint8_t* __restrict a = rows[0];
    const float wa = w[0];
    for (int i = 0; i < n; ++i) acc[i] = wa * static_cast<float>(a[i]);
    k = 1;
  }
  for (; k + 1 < nrows; k += 2) {
    const std::uint8_t* __restrict a = rows[k];
    const std::uint8_t* __restrict b = rows[k + 1];
    const float wa = w[k], wb = w[k + 1];
    for (int i = 0; i < n; ++i)
      acc[i] += wa * static_cast<float>(a[i]) + wb * static_cast<float>(b[i]);
  }
  if (k < nrows) {
    const std::uint8_t* __restrict a = rows[k];
    const float wa = w[k];
    for (int i = 0; i < n; ++i) acc[i] += wa * static_cast<float>(a[i]);
  }
}

// Fixed point: samples as 8.8, weights as 0.16, products by their high half, so one
// 16-bit lane holds a whole weighted sum (the weights sum to at most 1). The plan uses it
// only for short filters, where the truncation stays under 0.1 grey level. Rows go in
// pairs, each pair its own loop with restrict pointers (left to itself, GCC fuses the row
// loop into a scalar one); the last sweep writes float pixel units straight to `out`.
void vertical_q16(float* __restrict out, std::uint16_t* __restrict acc,
                  const std::uint8_t* const* rows, const std::uint16_t* w, int nrows, int n) {
  auto term = [](std::uint8_t x, std::uint16_t wk) {
    return static_cast<std::uint16_t>(
        (static_cast<std::uint32_t>(static_cast<std::uint16_t>(x << 8)) * wk) >> 16);
  };
  constexpr float unit = 1.f / 256.f;
  // Rows [0, head) go into acc; the last one or two rows finish into out.
  const int tail = nrows >= 2 ? 2 : 1;
  const int head = nrows - tail;
  int k = 0;
  if (head >= 2) {
    const std::uint8_t* __restrict a = rows[0];
    const std::uint8_t* __restrict b = rows[1];
    const std::uint16_t wa = w[0], wb = w[1];
    for (int i = 0; i < n; ++i) acc[i] = static_cast<std::uint16_t>(term(a[i], wa) + term(b[i], wb));
    k = 2;
  } else if (head == 1) {
    const std::uint8_t* __restrict a = rows[0];
    const std::uint16_t wa = w[0];
    for (int i = 0; i < n; ++i) acc[i] = term(a[i], wa);
    k = 1;
  }
  for (; k + 1 < head; k += 2) {
    const std::uint8_t* __restrict a = rows[k];
    const std::uint8_t* __restrict b = rows[k + 1];
    const std::uint16_t wa = w[k], wb = w[k + 1];
    for (int i = 0; i < n; ++i)
      acc[i] = static_cast<std::uint16_t>(acc[i] + term(a[i], wa) + term(b[i], wb));
  }
  if (k < head) {
    const std::uint8_t* __restrict a = rows[k];
    const std::uint16_t wa = w[k];
    for (int i = 0; i < n; ++i) acc[i] = static_cast<std::uint16_t>(acc[i] + term(a[i], wa));
    ++k;
  }
  const std::uint8_t* __restrict a = rows[k];
  const std::uint16_t wa = w[k];
  if (tail == 1) {
    for (int i = 0; i < n; ++i) out[i] = static_cast<float>(term(a[i], wa)) * unit;
    return;
  }
  const std::uint8_t* __restrict b = rows[k + 1];
  const std::uint16_t wb = w[k + 1];
  if (head == 0) {
    for (int i = 0; i < n; ++i)
      out[i] = static_cast<float>(static_cast<std::uint16_t>(term(a[i], wa) + term(b[i], wb))) *
               unit;
  } else {
    for (int i = 0; i < n; ++i)
      out[i] = static_cast<float>(
                   static_cast<std::uint16_t>(acc[i] + term(a[i], wa) + term(b[i], wb))) *
               unit;
  }
}

// Taps of one output pixel summed per channel; `order` picks which filtered channels
// become the three output colours (C >= 3) so that the store needs no reordering.
template <int C>
void horizontal_c(float* __restrict out, const float* __restrict acc, const int* order,
                  const Tap* taps, const float* weights, int out_w) {
  for (int x = 0; x < out_w; ++x) {
    const Tap t = taps[x];
    const float* src = acc + static_cast<std::ptrdiff_t>(t.start) * C;
    const float* w = weights + t.offset;
    float s[C] = {};
    for (int k = 0; k < t.count; ++k)
      for (int c = 0; c < C; ++c) s[c] += w[k] * src[k * C + c];
    if constexpr (C == 1) {
      out[x] = s[0];
    } else {
      for (int c = 0; c < 3; ++c) out[x * 3 + c] = s[order[c]];
    }
  }
}

// Three channels summed in four lanes, so each tap is one 4-wide multiply-add (a GCC/Clang
// vector type: SSE on x86-64, NEON on ARM); the fourth lane reads the next pixel (the row
// has slack for it) and is thrown away. Left to itself the compiler vectorises the tap
// loop with shuffles instead, which is slower.
typedef float Float4 __attribute__((vector_size(16)));

void horizontal_3in4(float* __restrict out, const float* __restrict acc, const int* order,
                     const Tap* taps, const float* weights, int out_w) {
  const int r = order[0], g = order[1], b = order[2];
  for (int x = 0; x < out_w; ++x) {
    const Tap t = taps[x];
    const float* src = acc + static_cast<std::ptrdiff_t>(t.start) * 3;
    const float* w = weights + t.offset;
    Float4 s = {0.f, 0.f, 0.f, 0.f};
    for (int k = 0; k < t.count; ++k) {
      Float4 v;
      std::memcpy(&v, src + k * 3, sizeof v);
      s += w[k] * v;
    }
    out[x * 3 + 0] = s[r];
    out[x * 3 + 1] = s[g];
    out[x * 3 + 2] = s[b];
  }
}

void horizontal(float* out, const float* acc, int channels, const int* order, const Tap* taps,
                const float* weights, int out_w) {
  switch (channels) {
    case 1: horizontal_c<1>(out, acc, order, taps, weights, out_w); break;
    case 3: horizontal_3in4(out, acc, order, taps, weights, out_w); break;
    default: horizontal_c<4>(out, acc, order, taps, weights, out_w); break;
  }
}

// Round half to even without a libm call, so the loop vectorises on any x86-64:
// adding 1.5 * 2^23 pushes the fraction out of the mantissa.
inline float round_even(float v) {
  constexpr float magic = 12582912.0f;
  return (v + magic) - magic;
}

// VC values per pixel come in (1 or 3, in output colour order), OC channels go out.
template <typename T, Layout L, int VC, int OC>
void store_t(void* out_v, std::size_t first, const float* __restrict vals, int out_w,
             const StoreParams& p) {
  T* __restrict out = static_cast<T*>(out_v);
  for (int x = 0; x < out_w; ++x) {
    for (int c = 0; c < OC; ++c) {
      float v;
      if constexpr (VC == OC) {
        v = vals[x * VC + c];
      } else if constexpr (VC == 1) {
        v = vals[x];
      } else {
        // ITU-R BT.601 luma, as cv::cvtColor(..., COLOR_RGB2GRAY).
        v = 0.299f * vals[x * 3] + 0.587f * vals[x * 3 + 1] + 0.114f * vals[x * 3 + 2];
      }
      float y = v * p.gain[c] + p.bias[c];
      T o;
      if constexpr (std::is_same_v<T, float>) {
        o = y;
      } else {
        y = y < p.lo ? p.lo : (y > p.hi ? p.hi : y);
        o = static_cast<T>(static_cast<int>(round_even(y)));
      }
      const std::size_t i = first + static_cast<std::size_t>(x);
      if constexpr (L == Layout::NHWC) out[i * OC + c] = o;
      else out[static_cast<std::size_t>(c) * p.plane + i] = o;
    }
  }
}

template <typename T, Layout L>
void store_layout(void* out, std::size_t first, const float* vals, int out_w,
                  const StoreParams& p) {
  if (p.out_channels == 1) {
    if (p.vals_channels == 1) store_t<T, L, 1, 1>(out, first, vals, out_w, p);
    else store_t<T, L, 3, 1>(out, first, vals, out_w, p);
  } else {
    if (p.vals_channels == 1) store_t<T, L, 1, 3>(out, first, vals, out_w, p);
    else store_t<T, L, 3, 3>(out, first, vals, out_w, p);
  }
}

template <typename T>
void store_typed(void* out, std::size_t first, const float* vals, int out_w, const StoreParams& p) {
  // One channel is one plane: both layouts write the same bytes.
  if (p.layout == Layout::NHWC || p.out_channels == 1)
    store_layout<T, Layout::NHWC>(out, first, vals, out_w, p);
  else
    store_layout<T, Layout::NCHW>(out, first, vals, out_w, p);
}

void store(void* out, std::size_t first, const float* vals, int out_w, const StoreParams& p) {
  switch (p.dtype) {
    case DType::U8: store_typed<std::uint8_t>(out, first, vals, out_w, p); break;
    case DType::I8: store_typed<std::int8_t>(out, first, vals, out_w, p); break;
    case DType::F32: store_typed<float>(out, first, vals, out_w, p); break;
  }
}

// A dot product in eight lanes with two accumulators: without -ffast-math the compiler
// may not reorder a float sum, so it will not vectorise the plain loop by itself.
typedef float Float8 __attribute__((vector_size(32)));

float dot(const float* __restrict a, const float* __restrict b, int n) {
  Float8 s0 = {}, s1 = {};
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    Float8 a0, b0, a1, b1;
    std::memcpy(&a0, a + i, sizeof a0);
    std::memcpy(&b0, b + i, sizeof b0);
    std::memcpy(&a1, a + i + 8, sizeof a1);
    std::memcpy(&b1, b + i + 8, sizeof b1);
    s0 += a0 * b0;
    s1 += a1 * b1;
  }
  for (; i + 8 <= n; i += 8) {
    Float8 a0, b0;
    std::memcpy(&a0, a + i, sizeof a0);
    std::memcpy(&b0, b + i, sizeof b0);
    s0 += a0 * b0;
  }
  s0 += s1;
  float r = ((s0[0] + s0[4]) + (s0[1] + s0[5])) + ((s0[2] + s0[6]) + (s0[3] + s0[7]));
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

void matvec(float* y, const float* A, int rows, int cols, const float* x, bool lower) {
  for (int r = 0; r < rows; ++r)
    y[r] = dot(A + static_cast<std::ptrdiff_t>(r) * cols, x, lower ? r + 1 : cols);
}

}  // namespace

const Kernels kernels{&vertical, &vertical_q16, &horizontal, &store, &matvec};
