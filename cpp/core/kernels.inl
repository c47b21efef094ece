// The hot loops, written once as plain loops the compiler vectorises, with intrinsic paths
// where it does not find the instructions by itself: AVX2 (__AVX2__, kernels_avx2.cpp),
// NEON (EDGE_NEON_INTRINSICS, kernels_neon.cpp) and SDOT (EDGE_NEON_DOTPROD,
// kernels_dotprod.cpp). Included inside a namespace by each per-variant translation unit,
// which defines EDGE_VARIANT (its name); no includes here. The plain reference is
// kernels_scalar.cpp.

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

// Fixed point: samples as 8.8, weights as 0.16, products by their high half, so one 16-bit
// lane holds a whole weighted sum (the weights sum to at most 1). The plan uses it only for
// short filters, where the truncation stays under 0.1 grey level.
#if defined(__AVX2__)
// Strips of 64 columns, their sums held in registers while every source row is added in, so
// they never go through memory. Unpacking a byte under a zero byte makes it 8.8 in one step;
// that interleaves the strip's halves, which the conversion to float puts back in order.
// Returns how many columns it did.
int vertical_q16_strips(float* __restrict out, const std::uint8_t* const* rows,
                        const std::uint16_t* w, int nrows, int n) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256 unit = _mm256_set1_ps(1.f / 256.f);
  auto to_float = [&](__m128i sums) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(sums)), unit);
  };
  int i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256i lo0 = zero, hi0 = zero, lo1 = zero, hi1 = zero;
    for (int k = 0; k < nrows; ++k) {
      const __m256i wk = _mm256_set1_epi16(static_cast<short>(w[k]));
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k] + i));
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k] + i + 32));
      lo0 = _mm256_add_epi16(lo0, _mm256_mulhi_epu16(_mm256_unpacklo_epi8(zero, a), wk));
      hi0 = _mm256_add_epi16(hi0, _mm256_mulhi_epu16(_mm256_unpackhi_epi8(zero, a), wk));
      lo1 = _mm256_add_epi16(lo1, _mm256_mulhi_epu16(_mm256_unpacklo_epi8(zero, b), wk));
      hi1 = _mm256_add_epi16(hi1, _mm256_mulhi_epu16(_mm256_unpackhi_epi8(zero, b), wk));
    }
    // lo holds columns 0-7 and 16-23 of its 32, hi 8-15 and 24-31.
    const __m256i halves[2][2] = {{lo0, hi0}, {lo1, hi1}};
    for (int h = 0; h < 2; ++h) {
      float* dst = out + i + 32 * h;
      _mm256_storeu_ps(dst, to_float(_mm256_castsi256_si128(halves[h][0])));
      _mm256_storeu_ps(dst + 8, to_float(_mm256_castsi256_si128(halves[h][1])));
      _mm256_storeu_ps(dst + 16, to_float(_mm256_extracti128_si256(halves[h][0], 1)));
      _mm256_storeu_ps(dst + 24, to_float(_mm256_extracti128_si256(halves[h][1], 1)));
    }
  }
  return i;
}
#endif

#if defined(EDGE_NEON_INTRINSICS)
// The same strips on NEON, 32 columns each: (x << 8) * w >> 16 == x * w >> 8, which a
// widening multiply and a narrowing shift give exactly, so the result equals the plain loop's.
int vertical_q16_strips(float* __restrict out, const std::uint8_t* const* rows,
                        const std::uint16_t* w, int nrows, int n) {
  const float32x4_t unit = vdupq_n_f32(1.f / 256.f);
  auto term = [](uint16x8_t x, std::uint16_t wk) {
    return vcombine_u16(vshrn_n_u32(vmull_n_u16(vget_low_u16(x), wk), 8),
                        vshrn_n_u32(vmull_n_u16(vget_high_u16(x), wk), 8));
  };
  auto store8 = [&](float* dst, uint16x8_t sums) {
    vst1q_f32(dst, vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(sums))), unit));
    vst1q_f32(dst + 4, vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(sums))), unit));
  };
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    uint16x8_t s0 = vdupq_n_u16(0), s1 = s0, s2 = s0, s3 = s0;
    for (int k = 0; k < nrows; ++k) {
      const uint8x16_t a = vld1q_u8(rows[k] + i), b = vld1q_u8(rows[k] + i + 16);
      s0 = vaddq_u16(s0, term(vmovl_u8(vget_low_u8(a)), w[k]));
      s1 = vaddq_u16(s1, term(vmovl_u8(vget_high_u8(a)), w[k]));
      s2 = vaddq_u16(s2, term(vmovl_u8(vget_low_u8(b)), w[k]));
      s3 = vaddq_u16(s3, term(vmovl_u8(vget_high_u8(b)), w[k]));
    }
    store8(out + i, s0);
    store8(out + i + 8, s1);
    store8(out + i + 16, s2);
    store8(out + i + 24, s3);
  }
  return i;
}
#endif

// Columns [from, n), portably: rows go in pairs, each pair its own loop with restrict
// pointers (left to itself, GCC fuses the row loop into a scalar one); `acc` holds the
// partial sums on the way and the last sweep writes float pixel units straight to `out`.
void vertical_q16_columns(float* __restrict out, std::uint16_t* __restrict acc,
                          const std::uint8_t* const* rows, const std::uint16_t* w, int nrows,
                          int from, int n) {
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
    for (int i = from; i < n; ++i)
      acc[i] = static_cast<std::uint16_t>(term(a[i], wa) + term(b[i], wb));
    k = 2;
  } else if (head == 1) {
    const std::uint8_t* __restrict a = rows[0];
    const std::uint16_t wa = w[0];
    for (int i = from; i < n; ++i) acc[i] = term(a[i], wa);
    k = 1;
  }
  for (; k + 1 < head; k += 2) {
    const std::uint8_t* __restrict a = rows[k];
    const std::uint8_t* __restrict b = rows[k + 1];
    const std::uint16_t wa = w[k], wb = w[k + 1];
    for (int i = from; i < n; ++i)
      acc[i] = static_cast<std::uint16_t>(acc[i] + term(a[i], wa) + term(b[i], wb));
  }
  if (k < head) {
    const std::uint8_t* __restrict a = rows[k];
    const std::uint16_t wa = w[k];
    for (int i = from; i < n; ++i) acc[i] = static_cast<std::uint16_t>(acc[i] + term(a[i], wa));
    ++k;
  }
  const std::uint8_t* __restrict a = rows[k];
  const std::uint16_t wa = w[k];
  if (tail == 1) {
    for (int i = from; i < n; ++i) out[i] = static_cast<float>(term(a[i], wa)) * unit;
    return;
  }
  const std::uint8_t* __restrict b = rows[k + 1];
  const std::uint16_t wb = w[k + 1];
  if (head == 0) {
    for (int i = from; i < n; ++i)
      out[i] = static_cast<float>(static_cast<std::uint16_t>(term(a[i], wa) + term(b[i], wb))) *
               unit;
  } else {
    for (int i = from; i < n; ++i)
      out[i] = static_cast<float>(
                   static_cast<std::uint16_t>(acc[i] + term(a[i], wa) + term(b[i], wb))) *
               unit;
  }
}

void vertical_q16(float* out, std::uint16_t* acc, const std::uint8_t* const* rows,
                  const std::uint16_t* w, int nrows, int n) {
  int from = 0;
#if defined(__AVX2__) || defined(EDGE_NEON_INTRINSICS)
  from = vertical_q16_strips(out, rows, w, nrows, n);
#endif
  vertical_q16_columns(out, acc, rows, w, nrows, from, n);
}

// The widest float vector the target has (a GCC/Clang vector type): 8 lanes with AVX2, 4 on
// the baseline (SSE2, NEON), where wider vector types would go through memory.
#if defined(__AVX2__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float FloatLanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef std::int32_t IntLanes __attribute__((vector_size(kLanes * sizeof(float))));

// C channels per pixel; each multiply-add covers P = kLanes / C pixels, so a pixel's taps take
// a few wide products rather than one per tap. Two sums alternate, halving the chain of
// dependent additions. The lanes then fold per channel, with shuffles fixed at compile time:
// for C > 1, the 4 lanes written per pixel overlap the next pixel's (out has one float of
// slack).
template <int C, bool Reversed>
void horizontal_lanes(float* __restrict out, const float* __restrict acc, const LaneTap* taps,
                      const float* __restrict lane_weights, int out_w) {
  constexpr int P = kLanes / C;
  // Lane l takes the weight of pixel l / C (lanes past P pixels, never folded, any weight).
  IntLanes spread;
  for (int l = 0; l < kLanes; ++l) spread[l] = l / C;
  for (int x = 0; x < out_w; ++x) {
    const LaneTap t = taps[x];
    const float* src = acc + static_cast<std::ptrdiff_t>(t.start) * C;
    const float* w = lane_weights + static_cast<std::ptrdiff_t>(t.first) * P;
    auto add_product = [&](FloatLanes& sum, int k) {
      FloatLanes v, weights;
      std::memcpy(&v, src + k * P * C, sizeof v);
      std::memcpy(&weights, w + k * P, sizeof weights);
      sum += v * __builtin_shuffle(weights, spread);
    };
    FloatLanes even = {}, odd = {};
    int k = 0;
    for (; k + 1 < t.vectors; k += 2) {
      add_product(even, k);
      add_product(odd, k + 1);
    }
    if (k < t.vectors) add_product(even, k);
    FloatLanes sum = even + odd;
    if constexpr (C == 1) {
      for (int half = kLanes / 2; half > 0; half /= 2) {
        IntLanes upper;
        for (int l = 0; l < kLanes; ++l) upper[l] = (l + half) % kLanes;
        sum += __builtin_shuffle(sum, upper);
      }
      out[x] = sum[0];
    } else {
      // Lanes 0-2 of colours(p): the output colours of the vector's pixel p.
      auto colours = [](int p) {
        IntLanes pick = {};
        for (int c = 0; c < 3; ++c) pick[c] = p * C + (Reversed ? 2 - c : c);
        return pick;
      };
      FloatLanes rgb = __builtin_shuffle(sum, colours(0));
      for (int p = 1; p < P; ++p) rgb += __builtin_shuffle(sum, colours(p));
      std::memcpy(out + x * 3, &rgb, 4 * sizeof(float));
    }
  }
}

void horizontal(float* out, const float* acc, int channels, bool reversed, const LaneTap* taps,
                const float* lane_weights, int out_w) {
  switch (channels) {
    case 1: horizontal_lanes<1, false>(out, acc, taps, lane_weights, out_w); break;
    case 3:
      if (reversed) horizontal_lanes<3, true>(out, acc, taps, lane_weights, out_w);
      else horizontal_lanes<3, false>(out, acc, taps, lane_weights, out_w);
      break;
    default:
      if (reversed) horizontal_lanes<4, true>(out, acc, taps, lane_weights, out_w);
      else horizontal_lanes<4, false>(out, acc, taps, lane_weights, out_w);
      break;
  }
}

// Asks for bytes [from, to) of a row to be brought into the cache ahead of their use.
inline void prefetch_span(const std::uint8_t* row, int from, int to) {
  for (int i = from & ~63; i < to; i += 64) __builtin_prefetch(row + i);
}

#if defined(__AVX2__)
// Eight output pixels at a time. Each pixel pair comes in as the 8 bytes from the left
// pixel's first (plain loads: the 32- and 64-bit gathers are slower here), two pairs per
// 128-bit half; a byte shuffle per channel then picks its left and right values as 32-bit
// integers. Returns how many pixels it did: a multiple of 8, and only pixels whose 8 bytes
// lie inside the row.
template <int C, bool Reversed>
int pair_row_avx2(float* __restrict out, const std::uint8_t* row, const std::uint8_t* ahead,
                  int row_bytes, int planes, const PairTaps& taps, int out_w) {
  int n = out_w;
  while (n > 0 && taps.left[n - 1] + 8 > row_bytes) --n;
  n &= ~7;
  // Per two pairs of 8 bytes: 32-bit lanes 0, 1 take byte `channel` of each (left pixel),
  // lanes 2, 3 byte C + channel (right pixel). The unpacks below then join the left values,
  // and the right ones, of pixels 0, 1 with 2, 3 (and 4, 5 with 6, 7 in the upper half).
  __m256i pick[3];
  for (int c = 0; c < planes; ++c) {
    const int channel = Reversed ? 2 - c : c;
    const int l = channel, r = C + channel;
    pick[c] = _mm256_setr_epi32(l | ~0xff, (8 + l) | ~0xff, r | ~0xff, (8 + r) | ~0xff,
                                l | ~0xff, (8 + l) | ~0xff, r | ~0xff, (8 + r) | ~0xff);
  }
  for (int x = 0; x < n; x += 8) {
    const int* at = taps.left + x;
    if (ahead != nullptr) prefetch_span(ahead, at[0], at[7] + 8);
    auto pair_bytes = [&](int i) {
      return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + at[i]));
    };
    auto two = [&](int i, int j) { return _mm_unpacklo_epi64(pair_bytes(i), pair_bytes(j)); };
    auto four = [&](int i, int j) {
      return _mm256_inserti128_si256(_mm256_castsi128_si256(two(i, i + 1)), two(j, j + 1), 1);
    };
    const __m256i first = four(0, 4), second = four(2, 6);
    const __m256 wl = _mm256_loadu_ps(taps.left_weight + x);
    const __m256 wr = _mm256_loadu_ps(taps.right_weight + x);
    for (int c = 0; c < planes; ++c) {
      const __m256i a = _mm256_shuffle_epi8(first, pick[c]);
      const __m256i b = _mm256_shuffle_epi8(second, pick[c]);
      const __m256 l = _mm256_cvtepi32_ps(_mm256_unpacklo_epi64(a, b));
      const __m256 r = _mm256_cvtepi32_ps(_mm256_unpackhi_epi64(a, b));
      _mm256_storeu_ps(out + static_cast<std::ptrdiff_t>(c) * out_w + x,
                       _mm256_fmadd_ps(wr, r, _mm256_mul_ps(wl, l)));
    }
  }
  return n;
}
#endif

#if defined(EDGE_NEON_INTRINSICS)
// Four output pixels at a time, as the AVX2 path does eight: each pixel's 8 bytes from its
// left pixel, two pixels to a 128-bit register, then a table lookup per channel picks the
// left and right values as 32-bit integers (index 0xff reads as zero). Returns how many
// pixels it did: a multiple of 4, and only pixels whose 8 bytes lie inside the row.
template <int C, bool Reversed>
int pair_row_neon(float* __restrict out, const std::uint8_t* row, const std::uint8_t* ahead,
                  int row_bytes, int planes, const PairTaps& taps, int out_w) {
  int n = out_w;
  while (n > 0 && taps.left[n - 1] + 8 > row_bytes) --n;
  n &= ~3;
  uint8x16_t pick[3];
  for (int c = 0; c < planes; ++c) {
    const int channel = Reversed ? 2 - c : c;
    const int l = channel, r = C + channel;
    // Lanes: left of pixel 0, left of pixel 1, right of pixel 0, right of pixel 1.
    const std::uint8_t bytes[16] = {
        static_cast<std::uint8_t>(l), 0xff, 0xff, 0xff, static_cast<std::uint8_t>(8 + l), 0xff, 0xff, 0xff,
        static_cast<std::uint8_t>(r), 0xff, 0xff, 0xff, static_cast<std::uint8_t>(8 + r), 0xff, 0xff, 0xff};
    pick[c] = vld1q_u8(bytes);
  }
  for (int x = 0; x < n; x += 4) {
    const int* at = taps.left + x;
    if (ahead != nullptr) prefetch_span(ahead, at[0], at[3] + 8);
    const uint8x16_t first = vcombine_u8(vld1_u8(row + at[0]), vld1_u8(row + at[1]));
    const uint8x16_t second = vcombine_u8(vld1_u8(row + at[2]), vld1_u8(row + at[3]));
    const float32x4_t wl = vld1q_f32(taps.left_weight + x);
    const float32x4_t wr = vld1q_f32(taps.right_weight + x);
    for (int c = 0; c < planes; ++c) {
      const uint32x4_t a = vreinterpretq_u32_u8(vqtbl1q_u8(first, pick[c]));
      const uint32x4_t b = vreinterpretq_u32_u8(vqtbl1q_u8(second, pick[c]));
      const float32x4_t l = vcvtq_f32_u32(vcombine_u32(vget_low_u32(a), vget_low_u32(b)));
      const float32x4_t r = vcvtq_f32_u32(vcombine_u32(vget_high_u32(a), vget_high_u32(b)));
      vst1q_f32(out + static_cast<std::ptrdiff_t>(c) * out_w + x,
                vfmaq_f32(vmulq_f32(wl, l), wr, r));
    }
  }
  return n;
}
#endif

template <int C, bool Reversed>
void pair_row_c(float* __restrict out, const std::uint8_t* row, const std::uint8_t* ahead,
                int row_bytes, int planes, const PairTaps& taps, int out_w) {
  int x = 0;
#if defined(__AVX2__)
  x = pair_row_avx2<C, Reversed>(out, row, ahead, row_bytes, planes, taps, out_w);
#elif defined(EDGE_NEON_INTRINSICS)
  x = pair_row_neon<C, Reversed>(out, row, ahead, row_bytes, planes, taps, out_w);
#endif
  if (ahead != nullptr && x < out_w) prefetch_span(ahead, taps.left[x], row_bytes);
  for (; x < out_w; ++x) {
    const std::uint8_t* left = row + taps.left[x];
    const float wl = taps.left_weight[x], wr = taps.right_weight[x];
    for (int c = 0; c < planes; ++c) {
      const int channel = Reversed ? 2 - c : c;
      out[static_cast<std::ptrdiff_t>(c) * out_w + x] =
          wl * static_cast<float>(left[channel]) + wr * static_cast<float>(left[C + channel]);
    }
  }
}

void pair_row(float* out, const std::uint8_t* row, const std::uint8_t* ahead, int row_bytes,
              int channels, bool reversed, int planes, const PairTaps& taps, int out_w) {
  switch (channels) {
    case 1: pair_row_c<1, false>(out, row, ahead, row_bytes, planes, taps, out_w); break;
    case 3:
      if (reversed) pair_row_c<3, true>(out, row, ahead, row_bytes, planes, taps, out_w);
      else pair_row_c<3, false>(out, row, ahead, row_bytes, planes, taps, out_w);
      break;
    default:
      if (reversed) pair_row_c<4, true>(out, row, ahead, row_bytes, planes, taps, out_w);
      else pair_row_c<4, false>(out, row, ahead, row_bytes, planes, taps, out_w);
      break;
  }
}

void blend(float* __restrict out, const float* __restrict a, float wa, const float* __restrict b,
           float wb, int n) {
  for (int i = 0; i < n; ++i) out[i] = wa * a[i] + wb * b[i];
}

// Round half to even without a libm call, so the loop vectorises on any x86-64:
// adding 1.5 * 2^23 pushes the fraction out of the mantissa.
inline float round_even(float v) {
  constexpr float magic = 12582912.0f;
  return (v + magic) - magic;
}

// A value in output units as type T: integers rounded and clamped to [lo, hi].
template <typename T>
inline T to_output(float y, const StoreParams& p) {
  if constexpr (std::is_same_v<T, float>) {
    return y;
  } else {
    // In the form of the min and max instructions, so it vectorises without blends.
    y = y > p.lo ? y : p.lo;
    y = y < p.hi ? y : p.hi;
    return static_cast<T>(static_cast<int>(round_even(y)));
  }
}

// VC values per pixel come in (1 or 3, in output colour order; interleaved, or as planes
// out_w apart), OC channels go out.
template <typename T, Layout L, bool Planes, int VC, int OC>
void store_t(void* out_v, std::size_t first, const float* __restrict vals, int out_w,
             const StoreParams& p) {
  T* __restrict out = static_cast<T*>(out_v);
  if constexpr (VC == OC && Planes == (L == Layout::NCHW)) {
    // Values already in the output's order: one run per plane, or one interleaved run.
    constexpr int runs = Planes ? OC : 1;
    constexpr int period = Planes ? 1 : OC;  // channels interleaved in a run
    const int n = out_w * period;
    for (int r = 0; r < runs; ++r) {
      const float* __restrict src = vals + static_cast<std::ptrdiff_t>(r) * out_w;
      T* __restrict dst = Planes ? out + static_cast<std::size_t>(r) * p.plane + first
                                 : out + first * OC;
      // Gains and biases repeated over whole vectors for any period, so the loop vectorises.
      constexpr int block = 8 * period;
      float gain[block], bias[block];
      for (int j = 0; j < block; ++j) {
        gain[j] = p.gain[r + j % period];
        bias[j] = p.bias[r + j % period];
      }
      int i = 0;
      for (; i + block <= n; i += block)
        for (int j = 0; j < block; ++j) dst[i + j] = to_output<T>(src[i + j] * gain[j] + bias[j], p);
      for (int j = 0; i < n; ++i, ++j) dst[i] = to_output<T>(src[i] * gain[j] + bias[j], p);
    }
    return;
  }
  auto val = [&](int x, int c) { return Planes ? vals[c * out_w + x] : vals[x * VC + c]; };
  for (int x = 0; x < out_w; ++x) {
    for (int c = 0; c < OC; ++c) {
      float v;
      if constexpr (VC == OC) {
        v = val(x, c);
      } else if constexpr (VC == 1) {
        v = val(x, 0);
      } else {
        // ITU-R BT.601 luma, as cv::cvtColor(..., COLOR_RGB2GRAY).
        v = 0.299f * val(x, 0) + 0.587f * val(x, 1) + 0.114f * val(x, 2);
      }
      const T o = to_output<T>(v * p.gain[c] + p.bias[c], p);
      const std::size_t i = first + static_cast<std::size_t>(x);
      if constexpr (L == Layout::NHWC) out[i * OC + c] = o;
      else out[static_cast<std::size_t>(c) * p.plane + i] = o;
    }
  }
}

template <typename T, Layout L, bool Planes>
void store_layout(void* out, std::size_t first, const float* vals, int out_w,
                  const StoreParams& p) {
  if (p.out_channels == 1) {
    if (p.vals_channels == 1) store_t<T, L, Planes, 1, 1>(out, first, vals, out_w, p);
    else store_t<T, L, Planes, 3, 1>(out, first, vals, out_w, p);
  } else {
    if (p.vals_channels == 1) store_t<T, L, Planes, 1, 3>(out, first, vals, out_w, p);
    else store_t<T, L, Planes, 3, 3>(out, first, vals, out_w, p);
  }
}

template <typename T, bool Planes>
void store_typed(void* out, std::size_t first, const float* vals, int out_w, const StoreParams& p) {
  // One channel is one plane: both layouts write the same bytes.
  if (p.layout == Layout::NHWC || p.out_channels == 1)
    store_layout<T, Layout::NHWC, Planes>(out, first, vals, out_w, p);
  else
    store_layout<T, Layout::NCHW, Planes>(out, first, vals, out_w, p);
}

template <bool Planes>
void store_from(void* out, std::size_t first, const float* vals, int out_w, const StoreParams& p) {
  switch (p.dtype) {
    case DType::U8: store_typed<std::uint8_t, Planes>(out, first, vals, out_w, p); break;
    case DType::I8: store_typed<std::int8_t, Planes>(out, first, vals, out_w, p); break;
    case DType::F32: store_typed<float, Planes>(out, first, vals, out_w, p); break;
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

// y[r] = scales[r] * dot(codes[r, :], x). The plain loop in eight float lanes: without
// -ffast-math the compiler may not reorder a float sum, so it will not vectorise a single sum.
[[maybe_unused]] float int8_dot_lanes(const std::int8_t* __restrict codes,
                                      const float* __restrict x, int n) {
  float lanes[8] = {};  // independent sums, which the compiler vectorises
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lanes[j] += static_cast<float>(codes[i + j]) * x[i + j];
  float dot = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) +
              ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
  for (; i < n; ++i) dot += static_cast<float>(codes[i]) * x[i];
  return dot;
}

#if defined(__AVX2__)
// Sixteen codes widened to two vectors of floats per step. GCC does not find the widening
// instructions from generic vector code, hence the intrinsics.
float int8_dot(const std::int8_t* codes, const float* x, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i));
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
    const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(c, 8)));
    s0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(x + i), s0);
    s1 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(x + i + 8), s1);
  }
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(_mm256_add_ps(s0, s1)),
                              _mm256_extractf128_ps(_mm256_add_ps(s0, s1), 1));
  const __m128 pairs = _mm_add_ps(s, _mm_movehl_ps(s, s));
  float dot = _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)));
  for (; i < n; ++i) dot += static_cast<float>(codes[i]) * x[i];
  return dot;
}
#elif defined(EDGE_NEON_INTRINSICS)
// Sixteen codes widened (s8 -> s16 -> s32 -> f32) into four fused multiply-add chains.
float int8_dot(const std::int8_t* codes, const float* x, int n) {
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const int8x16_t c = vld1q_s8(codes + i);
    const int16x8_t lo = vmovl_s8(vget_low_s8(c)), hi = vmovl_s8(vget_high_s8(c));
    s0 = vfmaq_f32(s0, vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vld1q_f32(x + i));
    s1 = vfmaq_f32(s1, vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), vld1q_f32(x + i + 4));
    s2 = vfmaq_f32(s2, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vld1q_f32(x + i + 8));
    s3 = vfmaq_f32(s3, vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), vld1q_f32(x + i + 12));
  }
  float dot = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; i < n; ++i) dot += static_cast<float>(codes[i]) * x[i];
  return dot;
}
#else
float int8_dot(const std::int8_t* codes, const float* x, int n) {
  return int8_dot_lanes(codes, x, n);
}
#endif

#if defined(EDGE_NEON_DOTPROD)
// SDOT multiplies int8 by int8, so x is quantized once per call to 15 bits, q = round(x / s)
// with |q| <= 16383, and split as q = 128 * hi + lo (hi in [-128, 127], lo in [0, 127]): two
// SDOTs per 16 codes give dot(codes, q) exactly. The only error is x's rounding, at most
// s / 2 per element: |y - exact| <= scales[r] * sum|codes[r, :]| * s / 2 (cpp/tests check it).
// Sums stay in int32 for 8192 columns (per lane at most 2048 * 127 * 128 < 2^31), then move
// to int64.
void int8_rows(float* y, const std::int8_t* codes, const float* scales, int rows, int cols,
               const float* x) {
  float largest = 0.f;
  for (int i = 0; i < cols; ++i) largest = std::max(largest, std::fabs(x[i]));
  if (!(largest > 0.f) || !std::isfinite(largest)) {
    // All zeros (or non-finite values, which integers cannot carry): the float path.
    for (int r = 0; r < rows; ++r)
      y[r] = int8_dot(codes + static_cast<std::ptrdiff_t>(r) * cols, x, cols) * scales[r];
    return;
  }
  const float step = largest / 16383.f;
  thread_local std::vector<std::int8_t> hi, lo;
  hi.resize(static_cast<std::size_t>(cols));
  lo.resize(static_cast<std::size_t>(cols));
  for (int i = 0; i < cols; ++i) {
    int q = static_cast<int>(std::lrint(x[i] / step));
    q = std::min(16383, std::max(-16383, q));
    const int h = q >> 7;  // arithmetic shift: floor(q / 128)
    hi[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(h);
    lo[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(q - h * 128);
  }
  constexpr int kChunk = 8192;
  for (int r = 0; r < rows; ++r) {
    const std::int8_t* c = codes + static_cast<std::ptrdiff_t>(r) * cols;
    std::int64_t total = 0;
    for (int from = 0; from < cols; from += kChunk) {
      const int to = std::min(cols, from + kChunk);
      int32x4_t sh = vdupq_n_s32(0), sl = sh;
      int i = from;
      for (; i + 16 <= to; i += 16) {
        const int8x16_t cv = vld1q_s8(c + i);
        sh = vdotq_s32(sh, cv, vld1q_s8(hi.data() + i));
        sl = vdotq_s32(sl, cv, vld1q_s8(lo.data() + i));
      }
      std::int64_t h = vaddlvq_s32(sh), l = vaddlvq_s32(sl);
      for (; i < to; ++i) h += c[i] * hi[static_cast<std::size_t>(i)], l += c[i] * lo[static_cast<std::size_t>(i)];
      total += 128 * h + l;
    }
    y[r] = static_cast<float>(static_cast<double>(total) * step * scales[r]);
  }
}
#else
void int8_rows(float* y, const std::int8_t* codes, const float* scales, int rows, int cols,
               const float* x) {
  for (int r = 0; r < rows; ++r)
    y[r] = int8_dot(codes + static_cast<std::ptrdiff_t>(r) * cols, x, cols) * scales[r];
}
#endif

}  // namespace

const Kernels kernels{EDGE_VARIANT,       kLanes,           &vertical, &vertical_q16,
                      &horizontal,        &pair_row,        &blend,    &store_from<false>,
                      &store_from<true>,  &matvec,          &int8_rows};
