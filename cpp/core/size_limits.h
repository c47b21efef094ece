// The largest inputs the core accepts, and the words that refuse a larger one.
//
// Every size product in the core is computed in std::size_t or std::ptrdiff_t, or stays in
// int (or a 32-bit sum, which vectorises) only where a static_assert against these bounds
// proves it cannot overflow. The bindings refuse anything larger by its shape, before a byte
// of it is read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace edge {

// An image or camera frame: at most 2^20 pixels a side and 2^30 pixels in all. No camera
// comes near: line-scan sensors are at most 32k pixels wide, the largest area sensors a few
// hundred megapixels. At 4 bytes a pixel a frame is at most 2^32 bytes, and the largest
// whole-frame sum of the statistics (the Laplacian's squares, 2^30 * 1020^2 < 2^50) stays
// exact in a double.
inline constexpr std::int64_t kMaxImageSide = std::int64_t{1} << 20;
inline constexpr std::int64_t kMaxImagePixels = std::int64_t{1} << 30;

// A preprocessor's output: at most 2^15 pixels a side.
inline constexpr int kMaxOutputSide = 1 << 15;

// What a score reads per frame: logits (classes), embedding dimensions, class means and
// bank rows, each at most 2^24 long; counts of frames in a batch are not limited.
inline constexpr std::int64_t kMaxScoreLength = std::int64_t{1} << 24;

static_assert(kMaxImageSide <= kMaxImagePixels);
static_assert(kMaxImageSide * 4 < INT32_MAX, "a row's bytes are counted in int");
static_assert(kMaxScoreLength < INT32_MAX, "score lengths are counted in int");

// Why an image of width x height pixels is refused, naming the argument `arg`; nothing when
// it lies within the limits.
inline std::optional<std::string> image_size_error(const char* arg, std::int64_t width,
                                                   std::int64_t height) {
  std::string size = std::to_string(width) + "x" + std::to_string(height) + " pixels";
  if (width <= kMaxImageSide && height <= kMaxImageSide) {
    // Both sides are at most 2^20 here, so their product cannot overflow.
    if (width * height <= kMaxImagePixels) return std::nullopt;
    size += " (" + std::to_string(width * height) + " in all)";
  }
  return std::string(arg) + " is too large: " + size + "; the limit is " +
         std::to_string(kMaxImageSide) + " pixels a side and " + std::to_string(kMaxImagePixels) +
         " in all";
}

// Why a score input whose `what` is `n` long is refused, naming the argument `arg`.
inline std::optional<std::string> score_length_error(const char* arg, const char* what,
                                                     std::int64_t n) {
  if (n <= kMaxScoreLength) return std::nullopt;
  return std::string(arg) + " is too large: " + std::to_string(n) + " " + what +
         "; the limit is " + std::to_string(kMaxScoreLength);
}

}  // namespace edge
