// Frame preprocessing: one pass from a raw camera frame to a model's input tensor.
//
// Plain C++17, no Python. The caller owns every buffer; after the first frame of a
// given size, run() allocates nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace edge {

enum class PixelFormat { BGR, RGB, BGRA, RGBA, GRAY, NV12, I420, YUYV };
enum class ColorOrder { RGB, BGR, GRAY };
enum class Layout { NHWC, NCHW };
enum class DType { U8, I8, F32 };
enum class Resize { Area, Bilinear };
enum class Fit { Stretch, Letterbox, Crop };

struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
};

struct PreprocessSpec {
  int out_w = 0, out_h = 0;
  PixelFormat src = PixelFormat::BGR;
  ColorOrder dst = ColorOrder::RGB;
  Layout layout = Layout::NHWC;
  DType dtype = DType::U8;
  Resize resize = Resize::Area;
  Fit fit = Fit::Stretch;
  // value = (pixel - mean[c]) / std[c], pixel units 0..255.
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};
  // Integer outputs store round(value / scale + zero_point), clamped to the type.
  float scale = 1.f;
  float zero_point = 0.f;
  // Letterbox border, pixel units, normalised like any other pixel.
  float pad_value = 0.f;
};

// A frame in memory: rows of bytes, `stride` bytes apart. For NV12 and I420 the
// chroma rows follow the `height` luma rows with the same stride (OpenCV's layout).
// Its size lies within the limits of size_limits.h (the binding checks).
struct Frame {
  const std::uint8_t* data = nullptr;
  int width = 0, height = 0;
  std::ptrdiff_t stride = 0;
  PixelFormat format = PixelFormat::BGR;
};

int channels_of(PixelFormat f);     // bytes per pixel in the packed row (NV12/I420: 1)
int channels_of(ColorOrder c);      // 3 or 1
std::size_t dtype_size(DType d);

class Preprocessor {
 public:
  // Throws std::invalid_argument naming the field when the spec is inconsistent.
  explicit Preprocessor(const PreprocessSpec& spec);
  ~Preprocessor();
  Preprocessor(const Preprocessor&) = delete;
  Preprocessor& operator=(const Preprocessor&) = delete;

  const PreprocessSpec& spec() const { return spec_; }
  int out_channels() const { return channels_of(spec_.dst); }
  std::size_t out_elements() const;

  // Writes the tensor for `roi` of `frame` into `out` (out_elements() values of spec().dtype).
  // `roi` must lie inside the frame (the binding checks). Safe to call from many threads at once.
  void run(const Frame& frame, const Rect& roi, void* out) const;

  struct Plan;

 private:
  std::shared_ptr<const Plan> plan_for(int roi_w, int roi_h) const;
  bool copies_bytes(const Plan& plan) const;

  PreprocessSpec spec_;
  std::array<float, 3> gain_{}, bias_{};  // out = value_in_pixels * gain + bias (before rounding)
  mutable std::mutex plans_mutex_;
  mutable std::vector<std::shared_ptr<const Plan>> plans_;  // most recent first, a few kept
};

// Which variant of the hot loops is in use: "scalar", "baseline", "avx2", "neon" or
// "dotprod". EDGE_ISA in the environment forces one; throws std::invalid_argument when it
// names a variant this build or CPU cannot run.
const char* active_isa();

}  // namespace edge
