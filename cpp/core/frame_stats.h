// What a frame looks like, in one pass over its luminance: the input gate's evidence of
// a camera fault (dark, blown out, out of focus, frozen) before the model is asked.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edge {

struct FrameStats {
  float brightness = 0;  // mean luma, 0..255
  float contrast = 0;    // standard deviation of luma
  float sharpness = 0;   // variance of the 4-neighbour Laplacian over the interior pixels
  float dark = 0;        // share of pixels with luma <= dark_level
  float bright = 0;      // share of pixels with luma >= bright_level
  std::uint64_t dhash = 0;  // difference hash of the 9x8 grid of box means
};

struct Image {
  const std::uint8_t* data = nullptr;
  int width = 0, height = 0;
  std::ptrdiff_t stride = 0;  // bytes between rows
  int channels = 1;           // 1, 3 or 4 bytes per pixel
  int red = 2, green = 1, blue = 0;  // byte positions of the colours (channels >= 3)
};

struct StatsOptions {
  int dark_level = 16;
  int bright_level = 239;
};

// Luma is ITU-R BT.601 in OpenCV's fixed point, so a grey image from cv::cvtColor gives
// the same figures. Images need at least 1x1 pixels and at most the limits of size_limits.h
// (the bindings check); sharpness is 0 below 3x3.
FrameStats frame_stats(const Image& image, const StatsOptions& options);

// Bits that differ between two hashes: 0 for the same picture, about 32 for unrelated ones.
int hamming(std::uint64_t a, std::uint64_t b);

}  // namespace edge
