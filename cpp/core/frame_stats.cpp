#include "frame_stats.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <cmath>
#include <vector>

#include "size_limits.h"

namespace edge {
namespace {

constexpr int kHashCols = 9, kHashRows = 8;

// Row sums run in 32 bits, which vectorise, over runs of at most kRun pixels, each run then
// widened: a run of bright pixels sums to at most kRun * 255^2 < 2^32 squares.
constexpr int kRun = 1 << 16;
static_assert(std::uint64_t{kRun} * 255 * 255 <= UINT32_MAX);
// A hash cell's columns are summed in 32 bits over the whole cell.
static_assert(kMaxImageSide * 255 <= UINT32_MAX);
// The Laplacian's squares reach 1020^2 a pixel; chunks of 1024 of them fit 32 bits.
constexpr int kLaplacianRun = 1024;
static_assert(std::uint64_t{kLaplacianRun} * 1020 * 1020 <= UINT32_MAX);

// Luma of one row of C-byte pixels. The weights sit at the colours' byte positions, so the
// loop has no lookups and, with C a constant, the compiler vectorises the strided loads.
template <int C>
void luma_row_c(const std::uint8_t* __restrict row, int width, const std::array<int, 3>& weight,
                std::uint8_t* __restrict out) {
  constexpr int kShift = 14;
  const int w0 = weight[0], w1 = weight[1], w2 = weight[2];
  for (int x = 0; x < width; ++x) {
    const std::uint8_t* p = row + static_cast<std::ptrdiff_t>(x) * C;
    out[x] = static_cast<std::uint8_t>((p[0] * w0 + p[1] * w1 + p[2] * w2 + (1 << (kShift - 1))) >>
                                       kShift);
  }
}

void luma_row(const Image& im, int y, const std::array<int, 3>& weight, std::uint8_t* out) {
  const std::uint8_t* row = im.data + static_cast<std::ptrdiff_t>(y) * im.stride;
  switch (im.channels) {
    case 1: std::copy(row, row + im.width, out); break;
    case 3: luma_row_c<3>(row, im.width, weight, out); break;
    default: luma_row_c<4>(row, im.width, weight, out); break;
  }
}

// cv::cvtColor's BT.601 coefficients in 14-bit fixed point, rounded, at each colour's byte.
std::array<int, 3> luma_weights(const Image& im) {
  std::array<int, 3> w{};
  if (im.channels >= 3) {
    w[static_cast<std::size_t>(im.red)] = 4899;
    w[static_cast<std::size_t>(im.green)] = 9617;
    w[static_cast<std::size_t>(im.blue)] = 1868;
  }
  return w;
}

}  // namespace

FrameStats frame_stats(const Image& im, const StatsOptions& options) {
  // Sizes within the limits (the bindings check), so W and H fit an int; products of them
  // are taken in 64 bits.
  const int W = im.width, H = im.height;
  const std::size_t row_len = static_cast<std::size_t>(W);
  thread_local std::vector<std::uint8_t> rows;  // three luma rows for the Laplacian
  if (rows.size() < 3 * row_len) rows.resize(3 * row_len);
  // Each hash cell's columns are one contiguous run: [col_start[c], col_start[c + 1]).
  std::array<int, kHashCols + 1> col_start{};
  for (int c = 0; c <= kHashCols; ++c)
    col_start[static_cast<std::size_t>(c)] =
        static_cast<int>((std::int64_t{c} * W + kHashCols - 1) / kHashCols);

  std::uint64_t sum = 0, sum_sq = 0, dark = 0, bright = 0;
  std::int64_t lap_sum = 0;
  std::uint64_t lap_sq = 0;
  std::array<std::uint64_t, kHashRows * kHashCols> bins{};
  std::array<std::uint64_t, kHashRows * kHashCols> counts{};
  const int dark_level = options.dark_level, bright_level = options.bright_level;
  const std::array<int, 3> weight = luma_weights(im);

  for (int y = 0; y < H; ++y) {
    std::uint8_t* cur = rows.data() + static_cast<std::size_t>(y % 3) * row_len;
    luma_row(im, y, weight, cur);
    const int hy = static_cast<int>(std::int64_t{y} * kHashRows / H);
    for (int x0 = 0; x0 < W; x0 += kRun) {
      const int x1 = static_cast<int>(std::min<std::int64_t>(W, std::int64_t{x0} + kRun));
      std::uint32_t run_sum = 0, run_sq = 0, run_dark = 0, run_bright = 0;
      for (int x = x0; x < x1; ++x) {
        const std::uint32_t v = cur[x];
        run_sum += v;
        run_sq += v * v;
        run_dark += static_cast<std::uint32_t>(static_cast<int>(v) <= dark_level);
        run_bright += static_cast<std::uint32_t>(static_cast<int>(v) >= bright_level);
      }
      sum += run_sum, sum_sq += run_sq, dark += run_dark, bright += run_bright;
    }
    for (int c = 0; c < kHashCols; ++c) {
      const int x0 = col_start[static_cast<std::size_t>(c)], x1 = col_start[static_cast<std::size_t>(c) + 1];
      std::uint32_t s = 0;
      for (int x = x0; x < x1; ++x) s += cur[x];
      const std::size_t b = static_cast<std::size_t>(hy * kHashCols + c);
      bins[b] += s;
      counts[b] += static_cast<std::uint64_t>(x1 - x0);
    }
    if (y >= 2 && W >= 3) {  // Laplacian centred on row y - 1
      const std::uint8_t* up = rows.data() + static_cast<std::size_t>((y - 2) % 3) * row_len;
      const std::uint8_t* mid = rows.data() + static_cast<std::size_t>((y - 1) % 3) * row_len;
      std::int64_t s = 0;
      std::uint64_t sq = 0;
      for (int x0 = 1; x0 < W - 1; x0 += kLaplacianRun) {
        const int x1 = std::min(W - 1, x0 + kLaplacianRun);
        std::int32_t cs = 0;
        std::uint32_t csq = 0;
        for (int x = x0; x < x1; ++x) {
          const std::int32_t l = up[x] + cur[x] + mid[x - 1] + mid[x + 1] - 4 * mid[x];
          cs += l;
          csq += static_cast<std::uint32_t>(l * l);
        }
        s += cs, sq += csq;
      }
      lap_sum += s, lap_sq += sq;
    }
  }

  FrameStats st;
  const double n = static_cast<double>(W) * H;
  const double mean = static_cast<double>(sum) / n;
  st.brightness = static_cast<float>(mean);
  st.contrast = static_cast<float>(std::sqrt(std::max(0.0, static_cast<double>(sum_sq) / n - mean * mean)));
  st.dark = static_cast<float>(static_cast<double>(dark) / n);
  st.bright = static_cast<float>(static_cast<double>(bright) / n);
  if (W >= 3 && H >= 3) {
    const double m = static_cast<double>(W - 2) * (H - 2);
    const double lm = static_cast<double>(lap_sum) / m;
    st.sharpness = static_cast<float>(std::max(0.0, static_cast<double>(lap_sq) / m - lm * lm));
  }
  // dHash: bit set where a cell is brighter than its right neighbour. Cells are compared by
  // their means; an empty cell (image narrower than 9 or shorter than 8) counts as black.
  auto cell = [&](int r, int c) {
    const std::size_t i = static_cast<std::size_t>(r * kHashCols + c);
    return counts[i] ? static_cast<double>(bins[i]) / static_cast<double>(counts[i]) : 0.0;
  };
  for (int r = 0; r < kHashRows; ++r)
    for (int c = 0; c < kHashCols - 1; ++c)
      if (cell(r, c) > cell(r, c + 1)) st.dhash |= std::uint64_t{1} << (r * 8 + c);
  return st;
}

int hamming(std::uint64_t a, std::uint64_t b) {
  return static_cast<int>(std::bitset<64>(a ^ b).count());
}

}  // namespace edge
