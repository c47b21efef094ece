#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "size_limits.h"

namespace edge {

using detail::LaneTap;
using detail::StoreParams;

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

// Whether filtered pixels hold blue first (then green, red); YUV frames are converted to RGB.
bool blue_first(PixelFormat f) { return f == PixelFormat::BGR || f == PixelFormat::BGRA; }

enum class Filter { Area, AreaUpscale, Linear };

// One output sample of a separable resampling filter: `count` source samples from
// `start`, weighted by weights[offset .. offset + count).
struct Tap {
  int start = 0;
  int count = 0;
  int offset = 0;
};

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

// The horizontal taps as Kernels::horizontal reads them, for vectors of `lanes` floats on rows
// of `channels` floats per pixel: each vector covers lanes / channels pixels, so each output
// pixel's weights are padded with zeros to a whole number of vectors; the weights of a vector
// are read as a whole vector, so `lanes` more floats end the list.
void lay_out_lanes(int lanes, int channels, const std::vector<Tap>& taps,
                   const std::vector<float>& weights, std::vector<LaneTap>& lane_taps,
                   std::vector<float>& lane_weights) {
  const int per_vector = lanes / channels;
  lane_taps.clear();
  lane_weights.clear();
  for (const Tap& t : taps) {
    const int vectors = (t.count + per_vector - 1) / per_vector;
    lane_taps.push_back({t.start, vectors, static_cast<int>(lane_weights.size()) / per_vector});
    for (int k = 0; k < vectors * per_vector; ++k)
      lane_weights.push_back(k < t.count ? weights[static_cast<std::size_t>(t.offset + k)] : 0.f);
  }
  lane_weights.insert(lane_weights.end(), static_cast<std::size_t>(lanes), 0.f);
}

// Filters with at most two taps per sample, as pairs of neighbouring source pixels: a single
// tap at s becomes the pair (s, s + 1), or (s - 1, s) at the last pixel, with a zero weight
// for the other. Needs ssize >= 2. `left` holds byte offsets in rows of `channels` bytes.
void pair_up(int ssize, int channels, const std::vector<Tap>& taps,
             const std::vector<float>& weights, std::vector<int>& left,
             std::vector<float>& left_weight, std::vector<float>& right_weight) {
  left.clear();
  left_weight.clear();
  right_weight.clear();
  for (const Tap& t : taps) {
    const float w0 = weights[static_cast<std::size_t>(t.offset)];
    const float w1 = t.count == 2 ? weights[static_cast<std::size_t>(t.offset + 1)] : 0.f;
    const bool at_end = t.count == 1 && t.start == ssize - 1;
    left.push_back((at_end ? t.start - 1 : t.start) * channels);
    left_weight.push_back(at_end ? 0.f : w0);
    right_weight.push_back(at_end ? w0 : w1);
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

// Row y of the frame from column x0 on, n pixels wide: a pointer into the frame, or for YUV
// frames the row converted to packed RGB in `converted`.
const std::uint8_t* source_row(const Frame& f, int y, int x0, int n, std::uint8_t* converted) {
  if (is_yuv(f.format)) {
    yuv_row_to_rgb(f, y, x0, n, converted);
    return converted;
  }
  return f.data + static_cast<std::ptrdiff_t>(y) * f.stride +
         static_cast<std::ptrdiff_t>(x0) * channels_of(f.format);
}

// Per-thread working rows; they only grow, so a steady stream of frames allocates nothing.
struct Scratch {
  std::vector<float> acc, vals, pad, filtered;
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

}  // namespace

struct Preprocessor::Plan {
  int roi_w = 0, roi_h = 0;
  Rect src;  // the part of the ROI that is resampled, relative to the ROI
  Rect dst;  // where it lands in the output
  std::vector<Tap> vtaps;
  std::vector<float> vweights;
  bool reversed = false;  // the output colours are the filtered channels in reverse order
  StoreParams store;
  // No tap of either filter has more than two samples (bilinear, area upscaling): each output
  // row blends two source rows, filtered horizontally straight from the bytes of the pixel
  // pairs it needs (hpairs). Otherwise the vertical pass goes first, over whole rows, and the
  // horizontal one follows (lane_taps, lane_weights).
  bool pairs = false;
  std::vector<int> hpairs_left;
  std::vector<float> hpairs_left_weight, hpairs_right_weight;
  std::vector<LaneTap> lane_taps;
  std::vector<float> lane_weights;
  std::vector<std::uint16_t> vweights_q16;  // used when fixed_point
  bool fixed_point = false;
  int max_vtaps = 0;
  // The output is the source's bytes, row by row (see copies_bytes).
  bool copy = false;
};

namespace {

// The last two source rows filtered horizontally: when upscaling, consecutive output rows
// share source rows, and each is filtered only once.
class FilteredRows {
 public:
  FilteredRows(float* storage, std::size_t row_floats) : storage_(storage), size_(row_floats) {}

  // Source row y, filtered by filter(y, destination) into the slot used least recently
  // unless it is already in one. Rows are asked for in increasing order.
  template <typename Filter>
  const float* get(int y, const Filter& filter) {
    for (int i = 0; i < 2; ++i) {
      if (row_[i] == y) {
        recent_ = i;
        return slot(i);
      }
    }
    recent_ = 1 - recent_;
    row_[recent_] = y;
    filter(y, slot(recent_));
    return slot(recent_);
  }

 private:
  float* slot(int i) const { return storage_ + static_cast<std::size_t>(i) * size_; }

  float* storage_;
  std::size_t size_;
  int row_[2] = {-1, -1};
  int recent_ = 1;
};

// Per output row: its one or two source rows filtered horizontally, blended, stored.
void resample_pairs(const Preprocessor::Plan& plan, const Frame& frame, int x0, int y0,
                    int out_w, void* out, Scratch& s) {
  const detail::Kernels& k = detail::kernels();
  const StoreParams& p = plan.store;
  const Rect& d = plan.dst;
  const int sc = filtered_channels(frame.format);
  const int row_bytes = plan.src.w * sc;
  const std::size_t row_floats = static_cast<std::size_t>(d.w) * p.vals_channels;
  grow(s.filtered, 2 * row_floats);
  grow(s.vals, row_floats);
  if (is_yuv(frame.format)) grow(s.converted, static_cast<std::size_t>(row_bytes));
  const detail::PairTaps taps{plan.hpairs_left.data(), plan.hpairs_left_weight.data(),
                              plan.hpairs_right_weight.data()};
  int j = 0;
  // Rows far apart (downscaling) are out of the hardware prefetcher's sight: while a row is
  // read, the row in its place for the next output row is fetched (not for YUV frames, whose
  // rows are converted first).
  auto row_ahead = [&](int y) -> const std::uint8_t* {
    if (j + 1 == d.h || is_yuv(frame.format)) return nullptr;
    const Tap& next = plan.vtaps[static_cast<std::size_t>(j + 1)];
    const int r = y - plan.vtaps[static_cast<std::size_t>(j)].start;
    return r < next.count ? source_row(frame, y0 + next.start + r, x0, plan.src.w, nullptr)
                          : nullptr;
  };
  auto filter = [&](int y, float* planes) {
    const std::uint8_t* row = source_row(frame, y0 + y, x0, plan.src.w, s.converted.data());
    k.pair_row(planes, row, row_ahead(y), row_bytes, sc, plan.reversed, p.vals_channels, taps,
               d.w);
  };
  FilteredRows rows(s.filtered.data(), row_floats);
  for (; j < d.h; ++j) {
    const Tap& t = plan.vtaps[static_cast<std::size_t>(j)];
    const float* w = plan.vweights.data() + t.offset;
    const float* a = rows.get(t.start, filter);
    const float* b = t.count == 2 ? rows.get(t.start + 1, filter) : a;
    k.blend(s.vals.data(), a, w[0], b, t.count == 2 ? w[1] : 0.f, static_cast<int>(row_floats));
    k.store_planes(out, static_cast<std::size_t>(d.y + j) * out_w + d.x, s.vals.data(), d.w, p);
  }
}

// Per output row: the vertical filter over whole source rows, then the horizontal one.
void resample_separable(const Preprocessor::Plan& plan, const Frame& frame, int x0, int y0,
                        int out_w, void* out, Scratch& s) {
  const detail::Kernels& k = detail::kernels();
  const StoreParams& p = plan.store;
  const Rect& d = plan.dst;
  const int sc = filtered_channels(frame.format);
  const int cw = plan.src.w;
  const std::size_t row_len = static_cast<std::size_t>(cw) * sc;
  grow(s.acc, row_len + static_cast<std::size_t>(k.lanes));  // slack read by horizontal
  if (plan.fixed_point) grow(s.acc16, row_len);
  grow(s.vals, static_cast<std::size_t>(d.w) * p.vals_channels + 1);  // slack horizontal writes
  grow(s.rows, static_cast<std::size_t>(plan.max_vtaps));
  if (is_yuv(frame.format)) grow(s.converted, row_len * plan.max_vtaps);
  for (int j = 0; j < d.h; ++j) {
    const Tap& t = plan.vtaps[static_cast<std::size_t>(j)];
    for (int r = 0; r < t.count; ++r)
      s.rows[static_cast<std::size_t>(r)] =
          source_row(frame, y0 + t.start + r, x0, cw, s.converted.data() + r * row_len);
    if (plan.fixed_point) {
      k.vertical_q16(s.acc.data(), s.acc16.data(), s.rows.data(),
                     plan.vweights_q16.data() + t.offset, t.count, static_cast<int>(row_len));
    } else {
      k.vertical(s.acc.data(), s.rows.data(), plan.vweights.data() + t.offset, t.count,
                 static_cast<int>(row_len));
    }
    k.horizontal(s.vals.data(), s.acc.data(), sc, plan.reversed, plan.lane_taps.data(),
                 plan.lane_weights.data(), d.w);
    k.store(out, static_cast<std::size_t>(d.y + j) * out_w + d.x, s.vals.data(), d.w, p);
  }
}

}  // namespace

Preprocessor::Preprocessor(const PreprocessSpec& spec) : spec_(spec) {
  if (spec.out_w < 1 || spec.out_h < 1 || spec.out_w > kMaxOutputSide || spec.out_h > kMaxOutputSide)
    throw std::invalid_argument("size must be two positive integers up to " +
                                std::to_string(kMaxOutputSide));
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
  std::vector<Tap> htaps;
  std::vector<float> hweights;
  build_taps(s.w, d.w, filter, htaps, hweights);
  for (const Tap& t : plan->vtaps) plan->max_vtaps = std::max(plan->max_vtaps, t.count);
  int max_htaps = 0;
  for (const Tap& t : htaps) max_htaps = std::max(max_htaps, t.count);
  const int sc = filtered_channels(spec_.src);
  plan->pairs = plan->max_vtaps <= 2 && max_htaps <= 2 && s.w >= 2;
  if (plan->pairs) {
    pair_up(s.w, sc, htaps, hweights, plan->hpairs_left, plan->hpairs_left_weight,
            plan->hpairs_right_weight);
  } else {
    lay_out_lanes(detail::kernels().lanes, sc, htaps, hweights, plan->lane_taps,
                  plan->lane_weights);
  }
  plan->fixed_point = plan->max_vtaps <= kMaxFixedPointTaps;
  if (plan->fixed_point) {
    // Rounded down, so the weights of one output row sum to at most 1 and never overflow.
    for (float w : plan->vweights)
      plan->vweights_q16.push_back(
          static_cast<std::uint16_t>(std::min(65535.0, std::floor(double(w) * 65536.0))));
  }

  StoreParams& p = plan->store;
  // Grey output is computed from values in RGB order.
  plan->reversed = blue_first(spec_.src) != (spec_.dst == ColorOrder::BGR);
  p.vals_channels = spec_.src == PixelFormat::GRAY ? 1 : 3;
  p.out_channels = out_channels();
  for (int c = 0; c < 3; ++c) p.gain[c] = gain_[c], p.bias[c] = bias_[c];
  p.lo = spec_.dtype == DType::I8 ? -128.f : 0.f;
  p.hi = spec_.dtype == DType::I8 ? 127.f : 255.f;
  p.dtype = spec_.dtype;
  p.layout = spec_.layout;
  p.plane = static_cast<std::size_t>(W) * H;
  plan->copy = copies_bytes(*plan);

  std::lock_guard<std::mutex> lock(plans_mutex_);
  plans_.insert(plans_.begin(), plan);
  if (plans_.size() > kPlansKept) plans_.pop_back();
  return plan;
}

// No resampling or padding, the source's channels in the source's order, and a value mapping
// that rounds every byte to itself: a uint8 model whose input quantization undoes its
// normalisation (scale 1/std, zero point mean, as most are) fed a frame of its input size.
bool Preprocessor::copies_bytes(const Plan& plan) const {
  const Rect& s = plan.src;
  const Rect& d = plan.dst;
  const StoreParams& p = plan.store;
  const int C = p.out_channels;
  if (!(s.w == d.w && s.h == d.h && d.w == spec_.out_w && d.h == spec_.out_h)) return false;
  if (is_yuv(spec_.src) || channels_of(spec_.src) != C || p.vals_channels != C) return false;
  if (plan.reversed || p.dtype != DType::U8 || (C > 1 && p.layout != Layout::NHWC)) return false;
  // The mapping is linear: a byte keeps its value when both ends of the range do, with room
  // for float rounding.
  for (int c = 0; c < C; ++c) {
    if (std::fabs(p.bias[c]) > 0.25f || std::fabs(255.f * p.gain[c] + p.bias[c] - 255.f) > 0.25f)
      return false;
  }
  return true;
}

void Preprocessor::run(const Frame& frame, const Rect& roi, void* out) const {
  const std::shared_ptr<const Plan> plan_ptr = plan_for(roi.w, roi.h);
  const Plan& plan = *plan_ptr;
  const detail::Kernels& k = detail::kernels();
  const StoreParams& p = plan.store;
  const int W = spec_.out_w, H = spec_.out_h;
  const Rect& d = plan.dst;
  thread_local Scratch s;

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

  const int x0 = roi.x + plan.src.x, y0 = roi.y + plan.src.y;
  if (plan.copy) {
    const std::size_t row_bytes = static_cast<std::size_t>(W) * p.out_channels;
    for (int y = 0; y < H; ++y)
      std::memcpy(static_cast<std::uint8_t*>(out) + static_cast<std::size_t>(y) * row_bytes,
                  source_row(frame, y0 + y, x0, W, nullptr), row_bytes);
    return;
  }
  if (plan.pairs) resample_pairs(plan, frame, x0, y0, W, out, s);
  else resample_separable(plan, frame, x0, y0, W, out, s);
}

}  // namespace edge
