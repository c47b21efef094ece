#include "frame_stats.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <cmath>
#include <vector>

namespace edge {
namespace {

constexpr int kHashCols = 9, kHashRows = 8;

void luma_row(const Image& im, int y, std::uint8_t* out) {
  const std::uint8_t* row = im.data + static_cast<std::ptrdiff_t>(y) * im.stride;
  if (im.channels == 1) {
    for (int x = 0; x < im.width; ++x) out[x] = row[x];
    return;
  }
  // cv::cvtColor's BT.601 coefficients in 14-bit fixed point, rounded.
  constexpr int kR = 4899, kG = 9617, kB = 1868, kShift = 14;
  for (int x = 0; x < im.width; ++x) {
    const std::uint8_t* p = row + static_cast<std::ptrdiff_t>(x) * im.channels;
    out[x] = static_cast<std::uint8_t>(
        (p[im.red] * kR + p[im.green] * kG + p[im.blue] * kB + (1 << (kShift - 1))) >> kShift);
  }
}

}  // namespace

FrameStats frame_stats(const Image& im, const StatsOptions& options) {
  const int W = im.width, H = im.height;
  thread_local std::vector<std::uint8_t> rows;  // three luma rows for the Laplacian
  thread_local std::vector<int> hash_col;
  if (rows.size() < static_cast<std::size_t>(3 * W)) rows.resize(static_cast<std::size_t>(3 * W));
  hash_col.resize(static_cast<std::size_t>(W));
  for (int x = 0; x < W; ++x) hash_col[static_cast<std::size_t>(x)] = x * kHashCols / W;

  std::uint64_t sum = 0, sum_sq = 0, dark = 0, bright = 0;
  std::int64_t lap_sum = 0;
  std::uint64_t lap_sq = 0;
  std::array<std::uint64_t, kHashRows * kHashCols> bins{};
  std::array<std::uint64_t, kHashRows * kHashCols> counts{};

  for (int y = 0; y < H; ++y) {
    std::uint8_t* cur = rows.data() + static_cast<std::size_t>(y % 3) * W;
    luma_row(im, y, cur);
    const int hy = y * kHashRows / H;
    std::uint64_t row_sum = 0, row_sq = 0, row_dark = 0, row_bright = 0;
    for (int x = 0; x < W; ++x) {
      const std::uint64_t v = cur[x];
      row_sum += v;
      row_sq += v * v;
      row_dark += v <= static_cast<std::uint64_t>(options.dark_level);
      row_bright += v >= static_cast<std::uint64_t>(options.bright_level);
    }
    sum += row_sum, sum_sq += row_sq, dark += row_dark, bright += row_bright;
    for (int x = 0; x < W; ++x) {
      const int b = hy * kHashCols + hash_col[static_cast<std::size_t>(x)];
      bins[static_cast<std::size_t>(b)] += cur[x];
      counts[static_cast<std::size_t>(b)] += 1;
    }
    if (y >= 2 && W >= 3) {  // Laplacian centred on row y - 1
      const std::uint8_t* up = rows.data() + static_cast<std::size_t>((y - 2) % 3) * W;
      const std::uint8_t* mid = rows.data() + static_cast<std::size_t>((y - 1) % 3) * W;
      std::int64_t s = 0;
      std::uint64_t sq = 0;  // up to 1020^2 a pixel: 32 bits overflow on wide frames
      for (int x = 1; x < W - 1; ++x) {
        const std::int32_t l = up[x] + cur[x] + mid[x - 1] + mid[x + 1] - 4 * mid[x];
        s += l;
        sq += static_cast<std::uint64_t>(l * l);
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
