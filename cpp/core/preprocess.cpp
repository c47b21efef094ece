#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels.h"

namespace edge {

using detail::StoreParams;
using detail::Tap;

int channels_of(PixelFormat f) {
  switch (f) {
    case PixelFormat::BGR:
    case PixelFormat::RGB: return 3;
    case PixelFormat::BGRA:
    case PixelFormat::RGBA: return 4;
    case PixelFormat::YUYV: return 2;
    case PixelFormat::GRAY:
    case PixelFormat::NV12:
    case PixelFormat::I420: return 1;
  }
  return 1;
}

int channels_of(ColorOrder c) { return c == ColorOrder::GRAY ? 1 : 3; }

std::size_t dtype_size(DType d) { return d == DType::F32 ? 4 : 1; }

namespace {

bool is_yuv(PixelFormat f) {
  return f == PixelFormat::NV12 || f == PixelFormat::I420 || f == PixelFormat::YUYV;
}

// Channels per pixel after the vertical pass: YUV frames are converted to RGB first.
int filtered_channels(PixelFormat f) { return is_yuv(f) ? 3 : channels_of(f); }

// Which filtered channel holds red, green and blue.
std::array<int, 3> rgb_positions(PixelFormat f) {
  switch (f) {
    case PixelFormat::BGR:
    case PixelFormat::BGRA: return {2, 1, 0};
    case PixelFormat::GRAY: return {0, 0, 0};
    default: return {0, 1, 2};  // RGB, RGBA, and YUV converted to RGB
  }
}

enum class Filter { Area, AreaUpscale, Linear };

// The taps OpenCV's cv::resize uses, so results agree with it to rounding:
// Area is computeResizeAreaTab (box filter with fractional edge weights, downscaling only);
// AreaUpscale is INTER_AREA's interpolation when not downscaling on both axes;
// Linear is INTER_LINEAR (half-pixel centres, edge clamped).
void build_taps(int ssize, int dsize, Filter filter, std::vector<Tap>& taps,
                std::vector<float>& weights) {
  taps.assign(static_cast<std::size_t>(dsize), Tap{});
  weights.clear();
  // As cv::resize derives it (the inverse of the inverse): at positions that land exactly on
  // a source pixel, ssize / dsize can round to the other side of the integer.
  const double inv_scale = static_cast<double>(dsize) / ssize;
  const double scale = 1.0 / inv_scale;
  for (int d = 0; d < dsize; ++d) {
    Tap& t = taps[static_cast<std::size_t>(d)];
    t.offset = static_cast<int>(weights.size());
    if (filter == Filter::Area) {
      const double f1 = d * scale, f2 = f1 + scale;
      const double cell = std::min(scale, ssize - f1);
      int s2 = std::min(static_cast<int>(std::floor(f2)), ssize - 1);
      int s1 = std::min(static_cast<int>(std::ceil(f1)), s2);
      t.start = s1;
      if (s1 - f1 > 1e-3) {
        t.start = s1 - 1;
        weights.push_back(static_cast<float>((s1 - f1) / cell));
      }
      for (int s = s1; s < s2; ++s) weights.push_back(static_cast<float>(1.0 / cell));
      if (f2 - s2 > 1e-3)
        weights.push_back(static_cast<float>(std::min(std::min(f2 - s2, 1.0), cell) / cell));
      t.count = static_cast<int>(weights.size()) - t.offset;
      if (t.count == 0) {  // degenerate cell at the very edge: take the nearest pixel
        t.count = 1;
        weights.push_back(1.f);
      }
      continue;
    }
    int s;
    float fx;
    if (filter == Filter::Linear) {
      const float pos = static_cast<float>((d + 0.5) * scale - 0.5);
      s = static_cast<int>(std::floor(pos));
      fx = pos - static_cast<float>(s);
    } else {
      s = static_cast<int>(std::floor(d * scale));
      fx = static_cast<float>((d + 1) - (s + 1) * inv_scale);
      fx = fx <= 0 ? 0.f : fx - std::floor(fx);
    }
    if (s < 0) s = 0, fx = 0.f;
    if (s >= ssize - 1) s = ssize - 1, fx = 0.f;
    t.start = s;
    t.count = fx == 0.f ? 1 : 2;
    weights.push_back(1.f - fx);
    if (t.count == 2) weights.push_back(fx);
  }
}

// BT.601 limited range, the fixed-point constants of OpenCV's YUV to RGB conversions.
struct Yuv601 {
  static constexpr int kShift = 20;
  static constexpr int kCY = 1220542, kCUB = 2116026, kCUG = -409993, kCVG = -852492,
                       kCVR = 1673527;
  static std::uint8_t clamp(int v) {
    return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
  }
  static void to_rgb(int y, int u, int v, std::uint8_t* rgb) {
    const int yy = std::max(0, y - 16) * kCY;
    u -= 128;
    v -= 128;
    constexpr int half = 1 << (kShift - 1);
    rgb[0] = clamp((yy + half + kCVR * v) >> kShift);
    rgb[1] = clamp((yy + half + kCVG * v + kCUG * u) >> kShift);
    rgb[2] = clamp((yy + half + kCUB * u) >> kShift);
  }
};

// Converts columns [x0, x0 + n) of row y of a YUV frame to packed RGB.
void yuv_row_to_rgb(const Frame& f, int y, int x0, int n, std::uint8_t* rgb) {
  const std::uint8_t* base = f.data;
  if (f.format == PixelFormat::YUYV) {
    const std::uint8_t* row = base + static_cast<std::ptrdiff_t>(y) * f.stride;
    for (int i = 0; i < n; ++i) {
      const int x = x0 + i;
      const std::uint8_t* pair = row + (x & ~1) * 2;
      Yuv601::to_rgb(row[2 * x], pair[1], pair[3], rgb + 3 * i);
    }
    return;
  }
  const std::uint8_t* luma = base + static_cast<std::ptrdiff_t>(y) * f.stride;
  if (f.format == PixelFormat::NV12) {
    const std::uint8_t* uv =
        base + static_cast<std::ptrdiff_t>(f.height + y / 2) * f.stride;
    for (int i = 0; i < n; ++i) {
      const int x = x0 + i;
      Yuv601::to_rgb(luma[x], uv[x & ~1], uv[(x & ~1) + 1], rgb + 3 * i);
    }
    return;
  }
  // I420: planar U then V, each (width/2) x (height/2), right after the luma plane.
  const std::ptrdiff_t cw = f.width / 2;
  const std::uint8_t* u = base + static_cast<std::ptrdiff_t>(f.width) * f.height + (y / 2) * cw;
  const std::uint8_t* v = u + cw * (f.height / 2);
  for (int i = 0; i < n; ++i) {
    const int x = x0 + i;
    Yuv601::to_rgb(luma[x], u[x / 2], v[x / 2], rgb + 3 * i);
  }
}

// Per-thread working rows; they only grow, so a steady stream of frames allocates nothing.
struct Scratch {
  std::vector<float> acc, vals, pad;
  std::vector<std::uint16_t> acc16;
  std::vector<const std::uint8_t*> rows;
  std::vector<std::uint8_t> converted;
};

template <typename T>
void grow(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

constexpr std::size_t kPlansKept = 4;
// Longest vertical filter run in 16-bit fixed point; each tap may lose 1/256 of a level.
constexpr int kMaxFixedPointTaps = 16;
constexpr int kMaxSide = 1 << 15;

}  // namespace

struct Preprocessor::Plan {
  int roi_w = 0, roi_h = 0;
  Rect src;  // the part of the ROI that is resampled, relative to the ROI
  Rect dst;  // where it lands in the output
  std::vector<Tap> vtaps, htaps;
  std::vector<float> vweights, hweights;
  std::vector<std::uint16_t> vweights_q16;  // used when fixed_point
  bool fixed_point = false;
  int max_vtaps = 0;
  std::array<int, 3> order{};  // filtered channels holding the output colours, in order
  StoreParams store;
};

Preprocessor::Preprocessor(const PreprocessSpec& spec) : spec_(spec) {
  if (spec.out_w < 1 || spec.out_h < 1 || spec.out_w > kMaxSide || spec.out_h > kMaxSide)
    throw std::invalid_argument("size must be two positive integers up to " +
                                std::to_string(kMaxSide));
  const bool integer_out = spec.dtype != DType::F32;
  if (!(std::isfinite(spec.scale) && spec.scale > 0.f))
    throw std::invalid_argument("scale must be a positive finite number");
  if (!std::isfinite(spec.zero_point))
    throw std::invalid_argument("zero_point must be finite");
  if (!std::isfinite(spec.pad_value))
    throw std::invalid_argument("pad_value must be finite");
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(spec.mean[c]))
      throw std::invalid_argument("mean must be finite");
    if (!std::isfinite(spec.std[c]) || spec.std[c] == 0.f)
      throw std::invalid_argument("std must be finite and non-zero");
    const float q = integer_out ? spec.scale : 1.f;
    gain_[c] = 1.f / (spec.std[c] * q);
    bias_[c] = -spec.mean[c] / (spec.std[c] * q) + (integer_out ? spec.zero_point : 0.f);
  }
}

Preprocessor::~Preprocessor() = default;

std::size_t Preprocessor::out_elements() const {
  return static_cast<std::size_t>(spec_.out_w) * spec_.out_h * out_channels();
}

std::shared_ptr<const Preprocessor::Plan> Preprocessor::plan_for(int roi_w, int roi_h) const {
  {
    std::lock_guard<std::mutex> lock(plans_mutex_);
    for (std::size_t i = 0; i < plans_.size(); ++i) {
      if (plans_[i]->roi_w == roi_w && plans_[i]->roi_h == roi_h) {
        if (i != 0) std::rotate(plans_.begin(), plans_.begin() + static_cast<long>(i),
                                plans_.begin() + static_cast<long>(i) + 1);
        return plans_.front();
      }
    }
  }
  auto plan = std::make_shared<Plan>();
  plan->roi_w = roi_w;
  plan->roi_h = roi_h;
  const int W = spec_.out_w, H = spec_.out_h;
  plan->src = {0, 0, roi_w, roi_h};
  plan->dst = {0, 0, W, H};
  if (spec_.fit == Fit::Crop) {
    // Centre crop of the ROI to the output's aspect ratio.
    if (static_cast<long long>(roi_w) * H > static_cast<long long>(roi_h) * W) {
      const int cw = std::clamp(static_cast<int>(std::lround(double(roi_h) * W / H)), 1, roi_w);
      plan->src = {(roi_w - cw) / 2, 0, cw, roi_h};
    } else {
      const int ch = std::clamp(static_cast<int>(std::lround(double(roi_w) * H / W)), 1, roi_h);
      plan->src = {0, (roi_h - ch) / 2, roi_w, ch};
    }
  } else if (spec_.fit == Fit::Letterbox) {
    const double s = std::min(double(W) / roi_w, double(H) / roi_h);
    const int iw = std::clamp(static_cast<int>(std::lround(roi_w * s)), 1, W);
    const int ih = std::clamp(static_cast<int>(std::lround(roi_h * s)), 1, H);
    plan->dst = {(W - iw) / 2, (H - ih) / 2, iw, ih};
  }
  const Rect& s = plan->src;
  const Rect& d = plan->dst;
  Filter filter = Filter::Linear;
  if (spec_.resize == Resize::Area)
    filter = (s.w >= d.w && s.h >= d.h) ? Filter::Area : Filter::AreaUpscale;
  build_taps(s.h, d.h, filter, plan->vtaps, plan->vweights);
  build_taps(s.w, d.w, filter, plan->htaps, plan->hweights);
  for (const Tap& t : plan->vtaps) plan->max_vtaps = std::max(plan->max_vtaps, t.count);
  plan->fixed_point = plan->max_vtaps <= kMaxFixedPointTaps;
  if (plan->fixed_point) {
    // Rounded down, so the weights of one output row sum to at most 1 and never overflow.
    for (float w : plan->vweights)
      plan->vweights_q16.push_back(
          static_cast<std::uint16_t>(std::min(65535.0, std::floor(double(w) * 65536.0))));
  }

  StoreParams& p = plan->store;
  const auto rgb = rgb_positions(spec_.src);
  const bool bgr_out = spec_.dst == ColorOrder::BGR;
  plan->order = {rgb[bgr_out ? 2 : 0], rgb[1], rgb[bgr_out ? 0 : 2]};
  p.vals_channels = spec_.src == PixelFormat::GRAY ? 1 : 3;
  p.out_channels = out_channels();
  for (int c = 0; c < 3; ++c) p.gain[c] = gain_[c], p.bias[c] = bias_[c];
  p.lo = spec_.dtype == DType::I8 ? -128.f : 0.f;
  p.hi = spec_.dtype == DType::I8 ? 127.f : 255.f;
  p.dtype = spec_.dtype;
  p.layout = spec_.layout;
  p.plane = static_cast<std::size_t>(W) * H;

  std::lock_guard<std::mutex> lock(plans_mutex_);
  plans_.insert(plans_.begin(), plan);
  if (plans_.size() > kPlansKept) plans_.pop_back();
  return plan;
}

void Preprocessor::run(const Frame& frame, const Rect& roi, void* out) const {
  const std::shared_ptr<const Plan> plan_ptr = plan_for(roi.w, roi.h);
  const Plan& plan = *plan_ptr;
  const detail::Kernels& k = detail::kernels();
  const StoreParams& p = plan.store;
  const int sc = filtered_channels(frame.format);
  const int W = spec_.out_w, H = spec_.out_h;
  const int x0 = roi.x + plan.src.x, y0 = roi.y + plan.src.y, cw = plan.src.w;
  const Rect& d = plan.dst;
  const bool yuv = is_yuv(frame.format);
  const int in_px = channels_of(frame.format);

  thread_local Scratch s;
  const std::size_t row_len = static_cast<std::size_t>(cw) * sc;
  grow(s.acc, row_len + 1);  // slack read by the 4-wide horizontal pass
  if (plan.fixed_point) grow(s.acc16, row_len);
  grow(s.vals, static_cast<std::size_t>(W) * sc);
  grow(s.rows, static_cast<std::size_t>(plan.max_vtaps));
  if (yuv) grow(s.converted, row_len * plan.max_vtaps);

  const bool padded = d.x > 0 || d.y > 0 || d.w < W || d.h < H;
  if (padded) {
    const std::size_t n = static_cast<std::size_t>(W) * p.vals_channels;
    grow(s.pad, n);
    std::fill(s.pad.begin(), s.pad.begin() + static_cast<long>(n), spec_.pad_value);
    for (int y = 0; y < H; ++y) {
      if (y >= d.y && y < d.y + d.h) {
        k.store(out, static_cast<std::size_t>(y) * W, s.pad.data(), d.x, p);
        k.store(out, static_cast<std::size_t>(y) * W + d.x + d.w, s.pad.data(), W - d.x - d.w, p);
      } else {
        k.store(out, static_cast<std::size_t>(y) * W, s.pad.data(), W, p);
      }
    }
  }

  for (int j = 0; j < d.h; ++j) {
    const Tap& t = plan.vtaps[static_cast<std::size_t>(j)];
    for (int r = 0; r < t.count; ++r) {
      const int y = y0 + t.start + r;
      if (yuv) {
        std::uint8_t* dst = s.converted.data() + static_cast<std::size_t>(r) * row_len;
        yuv_row_to_rgb(frame, y, x0, cw, dst);
        s.rows[static_cast<std::size_t>(r)] = dst;
      } else {
        s.rows[static_cast<std::size_t>(r)] =
            frame.data + static_cast<std::ptrdiff_t>(y) * frame.stride +
            static_cast<std::ptrdiff_t>(x0) * in_px;
      }
    }
    if (plan.fixed_point) {
      k.vertical_q16(s.acc.data(), s.acc16.data(), s.rows.data(),
                     plan.vweights_q16.data() + t.offset, t.count, static_cast<int>(row_len));
    } else {
      k.vertical(s.acc.data(), s.rows.data(), plan.vweights.data() + t.offset, t.count,
                 static_cast<int>(row_len));
    }
    k.horizontal(s.vals.data(), s.acc.data(), sc, plan.order.data(), plan.htaps.data(),
                 plan.hweights.data(), d.w);
    k.store(out, static_cast<std::size_t>(d.y + j) * W + d.x, s.vals.data(), d.w, p);
  }
}

}  // namespace edge
