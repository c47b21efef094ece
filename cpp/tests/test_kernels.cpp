// Every kernel of every variant this CPU runs, against the scalar reference (kernels.h):
// random sizes, strides and misaligned (offset) pointers, and the widths where vector loops
// hand over to their tails (1, 2, 7, 8, 15, 16, 17, 31, 32, 33 and a large one). Exact where
// the maths is exact (the fixed-point vertical pass); elsewhere within a bound on the float
// rounding, stated per kernel, since the variants add in another order or fuse multiply-adds.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"

using edge::DType;
using edge::Layout;
using edge::detail::Kernels;
using edge::detail::LaneTap;
using edge::detail::PairTaps;
using edge::detail::StoreParams;

namespace {

const Kernels& reference() { return edge::detail::scalar::kernels; }

// The variants to check: every one this CPU runs but the reference itself.
std::vector<const Kernels*> candidates() {
  std::vector<const Kernels*> v;
  for (const Kernels* k : edge::detail::runnable_variants())
    if (k != &reference()) v.push_back(k);
  return v;
}

std::vector<int> widths(std::mt19937& rng) {
  std::vector<int> w = {1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65};
  w.push_back(std::uniform_int_distribution<int>(500, 3000)(rng));  // large, random
  return w;
}

int uniform(std::mt19937& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}
float uniform_f(std::mt19937& rng, float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}

// A buffer whose data starts `offset` elements into its allocation, so the kernels see
// pointers off any vector alignment, and ends exactly where the data does, so the
// sanitizer build catches a read past it.
template <typename T>
struct Offset {
  std::vector<T> storage;
  int offset;
  Offset(int n, int off) : storage(static_cast<std::size_t>(n + off)), offset(off) {}
  T* data() { return storage.data() + offset; }
  T& operator[](int i) { return storage[static_cast<std::size_t>(i + offset)]; }
};

void random_bytes(std::mt19937& rng, std::uint8_t* p, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(uniform(rng, 0, 255));
}

constexpr float kEps = FLT_EPSILON;

}  // namespace

TEST_CASE("the scalar reference is always runnable and comes first") {
  const auto v = edge::detail::runnable_variants();
  REQUIRE(v.size() >= 2);
  CHECK(std::string(v[0]->name) == "scalar");
  CHECK(std::string(v[1]->name) == "baseline");
  MESSAGE("variants this CPU runs: " << [&] {
    std::string s;
    for (auto* k : v) s += std::string(k->name) + " ";
    return s;
  }());
}

// Float weights summing to 1: each output is within nrows * 255 * 4 eps of the reference
// (the variants pair rows up before adding; both round each of at most 2 * nrows operations).
TEST_CASE("vertical matches the reference") {
  std::mt19937 rng(1);
  for (const Kernels* k : candidates()) {
    INFO("variant " << k->name);
    for (int n : widths(rng)) {
      for (int nrows : {1, 2, 3, 4, 5, 8}) {
        INFO("n=" << n << " nrows=" << nrows);
        const int stride = n + uniform(rng, 0, 40);
        Offset<std::uint8_t> src(stride * nrows, uniform(rng, 0, 15));
        random_bytes(rng, src.data(), stride * nrows);
        std::vector<const std::uint8_t*> rows;
        std::vector<float> w;
        float total = 0;
        for (int r = 0; r < nrows; ++r) {
          rows.push_back(src.data() + r * stride);
          w.push_back(uniform_f(rng, 0.01f, 1.f));
          total += w.back();
        }
        for (float& x : w) x /= total;
        Offset<float> got(n, uniform(rng, 0, 7)), want(n, 0);
        k->vertical(got.data(), rows.data(), w.data(), nrows, n);
        reference().vertical(want.data(), rows.data(), w.data(), nrows, n);
        const float bound = 4.f * static_cast<float>(nrows) * 255.f * kEps;
        for (int i = 0; i < n; ++i) REQUIRE(std::fabs(got[i] - want[i]) <= bound);
      }
    }
  }
}

// Integer maths: bit for bit.
TEST_CASE("vertical_q16 matches the reference exactly") {
  std::mt19937 rng(2);
  for (const Kernels* k : candidates()) {
    INFO("variant " << k->name);
    for (int n : widths(rng)) {
      for (int nrows : {1, 2, 3, 4, 5, 6}) {
        INFO("n=" << n << " nrows=" << nrows);
        const int stride = n + uniform(rng, 0, 40);
        Offset<std::uint8_t> src(stride * nrows, uniform(rng, 0, 15));
        random_bytes(rng, src.data(), stride * nrows);
        std::vector<const std::uint8_t*> rows;
        std::vector<double> wf;
        double total = 0;
        for (int r = 0; r < nrows; ++r) {
          rows.push_back(src.data() + r * stride);
          wf.push_back(uniform_f(rng, 0.01f, 1.f));
          total += wf.back();
        }
        // Rounded down as the plan does, so they sum to at most 1.
        std::vector<std::uint16_t> w;
        for (double x : wf)
          w.push_back(static_cast<std::uint16_t>(std::min(65535.0, std::floor(x / total * 65536.0))));
        std::vector<std::uint16_t> acc(static_cast<std::size_t>(n));
        Offset<float> got(n, uniform(rng, 0, 7)), want(n, 0);
        k->vertical_q16(got.data(), acc.data(), rows.data(), w.data(), nrows, n);
        reference().vertical_q16(want.data(), acc.data(), rows.data(), w.data(), nrows, n);
        for (int i = 0; i < n; ++i) REQUIRE(got[i] == want[i]);
      }
    }
  }
}

namespace {

struct Tap {
  int start, count;
  std::vector<float> w;
};

// The layout of preprocess.cpp's lay_out_lanes, for a variant's own lane count.
void lay_out(int lanes, int channels, const std::vector<Tap>& taps, std::vector<LaneTap>& lt,
             std::vector<float>& lw) {
  const int per_vector = lanes / channels;
  lt.clear();
  lw.clear();
  for (const Tap& t : taps) {
    const int vectors = (t.count + per_vector - 1) / per_vector;
    lt.push_back({t.start, vectors, static_cast<int>(lw.size()) / per_vector});
    for (int k = 0; k < vectors * per_vector; ++k) lw.push_back(k < t.count ? t.w[k] : 0.f);
  }
  lw.insert(lw.end(), static_cast<std::size_t>(lanes), 0.f);
}

}  // namespace

// Weights summing to 1 over at most 6 taps of values in [0, 255]: within 6 * 255 * 4 eps.
TEST_CASE("horizontal matches the reference") {
  std::mt19937 rng(3);
  for (const Kernels* k : candidates()) {
    INFO("variant " << k->name);
    for (int out_w : widths(rng)) {
      for (int channels : {1, 3, 4}) {
        for (bool reversed : {false, true}) {
 INFO("out_w=" << out_w << " channels=" << channels << " reversed=" << reversed);
          const int src_w = out_w + 8;
          std::vector<Tap> taps;
          for (int x = 0; x < out_w; ++x) {
            Tap t{0, uniform(rng, 1, 6), {}};
            t.start = uniform(rng, 0, src_w - t.count);
            float total = 0;
            for (int j = 0; j < t.count; ++j) t.w.push_back(uniform_f(rng, 0.f, 1.f)), total += t.w.back();
            for (float& w : t.w) w /= total;
            taps.push_back(t);
          }
          // The vector variants read whole vectors past a tap's last pixel: slack, finite.
          const int acc_n = (src_w + 16) * channels;
          Offset<float> acc(acc_n, uniform(rng, 0, 7));
          for (int i = 0; i < acc_n; ++i) acc[i] = static_cast<float>(uniform(rng, 0, 255));
          std::vector<LaneTap> lt, rt;
          std::vector<float> lw, rw;
          lay_out(k->lanes, channels, taps, lt, lw);
          lay_out(reference().lanes, channels, taps, rt, rw);
          const int colours = channels == 1 ? 1 : 3;
          std::vector<float> got(static_cast<std::size_t>(out_w * colours + 1)), want(got.size());
          k->horizontal(got.data(), acc.data(), channels, reversed, lt.data(), lw.data(), out_w);
          reference().horizontal(want.data(), acc.data(), channels, reversed, rt.data(), rw.data(),
                                 out_w);
          const float bound = 6.f * 255.f * 4.f * kEps;
          for (int i = 0; i < out_w * colours; ++i)
            REQUIRE(std::fabs(got[static_cast<std::size_t>(i)] - want[static_cast<std::size_t>(i)]) <= bound);
        }
      }
    }
  }
}

// Two products of at most 255 and one sum: within 255 * 4 eps (a fused multiply-add rounds
// once less).
TEST_CASE("pair_row matches the reference") {
  std::mt19937 rng(4);
  for (const Kernels* k : candidates()) {
    INFO("variant " << k->name);
    for (int out_w : widths(rng)) {
      for (int channels : {1, 3, 4}) {
        for (int planes : {1, 3}) {
          for (bool reversed : {false, true}) {
            // Grey comes with reversed too (the plan sets it by the output's order).
            if (channels == 1 && planes == 3) continue;
            INFO("out_w=" << out_w << " channels=" << channels << " planes=" << planes
                          << " reversed=" << reversed);
            const int src_w = std::max(2, out_w / 2 + uniform(rng, 0, out_w));
            const int row_bytes = src_w * channels;
            // Ends where the row ends: the sanitizer build catches any read past it.
            Offset<std::uint8_t> row(row_bytes, uniform(rng, 0, 15));
            Offset<std::uint8_t> ahead(row_bytes, 0);
            random_bytes(rng, row.data(), row_bytes);
            std::vector<int> left;
            std::vector<float> lw, rw;
            for (int x = 0; x < out_w; ++x) {
              // Never decreasing, as a resize makes them (PairTaps), with random repeats and jumps.
              const int step = uniform(rng, 0, 3) == 0 ? uniform(rng, 0, 2) : 0;
              const int even = std::min(src_w - 2, x * (src_w - 1) / std::max(1, out_w));
              const int p = std::min(src_w - 2, std::max(even, (left.empty() ? 0 : left.back() / channels) + step));
              left.push_back(p * channels);
              const float a = uniform_f(rng, 0.f, 1.f);
              lw.push_back(a), rw.push_back(1.f - a);
            }
            const PairTaps taps{left.data(), lw.data(), rw.data()};
            const int n = out_w * planes;
            Offset<float> got(n, uniform(rng, 0, 7)), want(n, 0);
            k->pair_row(got.data(), row.data(), ahead.data(), row_bytes, channels, reversed, planes,
                        taps, out_w);
            reference().pair_row(want.data(), row.data(), nullptr, row_bytes, channels, reversed,
                                 planes, taps, out_w);
            for (int i = 0; i < n; ++i) REQUIRE(std::fabs(got[i] - want[i]) <= 255.f * 4.f * kEps);
          }
        }
      }
    }
  }
}

TEST_CASE("blend matches the reference") {
  std::mt19937 rng(5);
  for (const Kernels* k : candidates()) {
    INFO("variant " << k->name);
    for (int n : widths(rng)) {
      INFO("n=" << n);
      Offset<float> a(n, uniform(rng, 0, 7)), b(n, uniform(rng, 0, 7));
      for (int i = 0; i < n; ++i) a[i] = uniform_f(rng, 0, 255), b[i] = uniform_f(rng, 0, 255);
      const float wa = uniform_f(rng, 0, 1), wb = 1 - wa;
      Offset<float> got(n, uniform(rng, 0, 7)), want(n, 0);
      k->blend(got.data(), a.data(), wa, b.data(), wb, n);
      reference().blend(want.data(), a.data(), wa, b.data(), wb, n);
      for (int i = 0; i < n; ++i) REQUIRE(std::fabs(got[i] - want[i]) <= 255.f * 4.f * kEps);
    }
  }
}

// Floats within a few ulps of the mapped value (fused or not); integers rounded from such
// values, so equal or, at a tie the rounding error tipped, one apart.
TEST_CASE("store and store_planes match the reference") {
  std::mt19937 rng(6);
  for (const Kernels* k : candidates()) {
    INFO("variant " << k->name);
    for (int out_w : widths(rng)) {
      for (DType dtype : {DType::U8, DType::I8, DType::F32}) {
        for (Layout layout : {Layout::NHWC, Layout::NCHW}) {
          for (int vc : {1, 3}) {
            for (int oc : {1, 3}) {
              for (bool planes : {false, true}) {
                INFO("out_w=" << out_w << " dtype=" << int(dtype) << " layout=" << int(layout)
                              << " vals=" << vc << " out=" << oc << " planes=" << planes);
                StoreParams p;
                p.vals_channels = vc, p.out_channels = oc, p.dtype = dtype, p.layout = layout;
                for (int c = 0; c < 3; ++c)
                  p.gain[c] = uniform_f(rng, -2, 2), p.bias[c] = uniform_f(rng, -100, 100);
                p.lo = dtype == DType::I8 ? -128.f : 0.f;
                p.hi = dtype == DType::I8 ? 127.f : 255.f;
                const std::size_t first = static_cast<std::size_t>(uniform(rng, 0, 9));
                p.plane = first + static_cast<std::size_t>(out_w) + static_cast<std::size_t>(uniform(rng, 0, 5));
                const int nv = out_w * vc;
                Offset<float> vals(nv, uniform(rng, 0, 7));
                for (int i = 0; i < nv; ++i) vals[i] = uniform_f(rng, -20, 280);
                const std::size_t elem = dtype == DType::F32 ? 4 : 1;
                const std::size_t bytes = p.plane * 3 * elem;
                std::vector<unsigned char> got(bytes, 0xAB), want(bytes, 0xAB);
                (planes ? k->store_planes : k->store)(got.data(), first, vals.data(), out_w, p);
                (planes ? reference().store_planes : reference().store)(want.data(), first,
                                                                        vals.data(), out_w, p);
                for (std::size_t i = 0; i < bytes / elem; ++i) {
                  if (dtype == DType::F32) {
                    float g, w;
                    std::memcpy(&g, got.data() + 4 * i, 4);
                    std::memcpy(&w, want.data() + 4 * i, 4);
                    REQUIRE(std::fabs(g - w) <= 8.f * kEps * (std::fabs(w) + 600.f));
                  } else if (dtype == DType::U8) {
                    REQUIRE(std::abs(int(got[i]) - int(want[i])) <= 1);
                  } else {
                    REQUIRE(std::abs(int(static_cast<std::int8_t>(got[i])) -
                                     int(static_cast<std::int8_t>(want[i]))) <= 1);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

// A float dot product of n terms, summed in another order: within 2 n eps sum|a_i x_i|.
TEST_CASE("matvec matches the reference") {
  std::mt19937 rng(7);
  for (const Kernels* k : candidates()) {
    INFO("variant " << k->name);
    for (int cols : widths(rng)) {
      for (bool lower : {false, true}) {
        const int rows = lower ? cols : uniform(rng, 1, 5);
        if (lower && cols > 300) continue;  // a triangle of a large side is slow, not harder
        INFO("cols=" << cols << " lower=" << lower);
        Offset<float> A(rows * cols, uniform(rng, 0, 7)), x(cols, uniform(rng, 0, 7));
        for (int i = 0; i < rows * cols; ++i) A[i] = uniform_f(rng, -1, 1);
        for (int i = 0; i < cols; ++i) x[i] = uniform_f(rng, -1, 1);
        std::vector<float> got(static_cast<std::size_t>(rows)), want(got.size());
        k->matvec(got.data(), A.data(), rows, cols, x.data(), lower);
        reference().matvec(want.data(), A.data(), rows, cols, x.data(), lower);
        for (int r = 0; r < rows; ++r) {
          const int len = lower ? r + 1 : cols;
          double mag = 0;
          for (int i = 0; i < len; ++i) mag += std::fabs(double(A[r * cols + i]) * x[i]);
          REQUIRE(std::fabs(got[static_cast<std::size_t>(r)] - want[static_cast<std::size_t>(r)]) <=
                  2.0 * len * kEps * mag + 1e-30);
        }
      }
    }
  }
}

// As matvec, times the row's scale; dotprod also rounds x to 15 bits (kernels.inl), which
// adds at most scale * sum|codes| * step / 2, step = max|x| / 16383.
TEST_CASE("int8_rows matches the reference") {
  std::mt19937 rng(8);
  for (const Kernels* k : candidates()) {
    INFO("variant " << k->name);
    const bool quantizes_x = std::string(k->name) == "dotprod";
    std::vector<int> ws = widths(rng);
    ws.push_back(20000);  // past the 8192 columns dotprod sums in int32
    for (int cols : ws) {
      const int rows = uniform(rng, 1, 6);
      INFO("cols=" << cols << " rows=" << rows);
      Offset<std::int8_t> codes(rows * cols, uniform(rng, 0, 15));
      for (int i = 0; i < rows * cols; ++i) codes[i] = static_cast<std::int8_t>(uniform(rng, -127, 127));
      Offset<float> x(cols, uniform(rng, 0, 7));
      float largest = 0;
      for (int i = 0; i < cols; ++i) x[i] = uniform_f(rng, -3, 3), largest = std::max(largest, std::fabs(x[i]));
      std::vector<float> scales;
      for (int r = 0; r < rows; ++r) scales.push_back(uniform_f(rng, 0.001f, 0.1f));
      std::vector<float> got(static_cast<std::size_t>(rows)), want(got.size());
      k->int8_rows(got.data(), codes.data(), scales.data(), rows, cols, x.data());
      reference().int8_rows(want.data(), codes.data(), scales.data(), rows, cols, x.data());
      for (int r = 0; r < rows; ++r) {
        double mag = 0, codes_abs = 0;
        for (int i = 0; i < cols; ++i) {
          mag += std::fabs(double(codes[r * cols + i]) * x[i]);
          codes_abs += std::abs(int(codes[r * cols + i]));
        }
        double bound = (2.0 * cols + 2) * kEps * mag * scales[static_cast<std::size_t>(r)];
        if (quantizes_x) bound += scales[static_cast<std::size_t>(r)] * codes_abs * largest / 16383.0 / 2;
        REQUIRE(std::fabs(got[static_cast<std::size_t>(r)] - want[static_cast<std::size_t>(r)]) <= bound);
      }
    }
  }
}
