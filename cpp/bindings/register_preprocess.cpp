// Binding of edge::Preprocessor: keyword parsing once at construction, array checks per
// frame, then the kernel runs without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "preprocess.h"
#include "size_limits.h"

namespace py = pybind11;

namespace {

template <typename E>
using Choices = std::vector<std::pair<const char*, E>>;

const Choices<edge::PixelFormat> kSrc = {
    {"bgr", edge::PixelFormat::BGR},   {"rgb", edge::PixelFormat::RGB},
    {"bgra", edge::PixelFormat::BGRA}, {"rgba", edge::PixelFormat::RGBA},
    {"gray", edge::PixelFormat::GRAY}, {"nv12", edge::PixelFormat::NV12},
    {"i420", edge::PixelFormat::I420}, {"yuyv", edge::PixelFormat::YUYV}};
const Choices<edge::ColorOrder> kDst = {
    {"rgb", edge::ColorOrder::RGB}, {"bgr", edge::ColorOrder::BGR}, {"gray", edge::ColorOrder::GRAY}};
const Choices<edge::Layout> kLayout = {{"nhwc", edge::Layout::NHWC}, {"nchw", edge::Layout::NCHW}};
const Choices<edge::DType> kDtype = {
    {"uint8", edge::DType::U8}, {"int8", edge::DType::I8}, {"float32", edge::DType::F32}};
const Choices<edge::Resize> kResize = {{"area", edge::Resize::Area},
                                       {"bilinear", edge::Resize::Bilinear}};
const Choices<edge::Fit> kFit = {
    {"stretch", edge::Fit::Stretch}, {"letterbox", edge::Fit::Letterbox}, {"crop", edge::Fit::Crop}};

std::string type_name(const py::handle& h) { return py::str(py::type::of(h).attr("__name__")); }

template <typename E>
E parse(const char* arg, const std::string& value, const Choices<E>& choices) {
  std::ostringstream names;
  for (const auto& [name, e] : choices) {
    if (value == name) return e;
    names << (names.tellp() > 0 ? ", " : "") << "'" << name << "'";
  }
  throw py::value_error(std::string(arg) + " must be one of " + names.str() + "; got '" + value +
                        "'");
}

std::string str_arg(const char* arg, const py::object& value) {
  if (!py::isinstance<py::str>(value))
    throw py::type_error(std::string(arg) + " must be a string; got " + type_name(value));
  return value.cast<std::string>();
}

float number_arg(const char* arg, const py::object& value) {
  if (!(py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value)) ||
      py::isinstance<py::bool_>(value))
    throw py::type_error(std::string(arg) + " must be a number; got " + type_name(value));
  return value.cast<float>();
}

template <typename E>
const char* name_of(E e, const Choices<E>& choices) {
  for (const auto& [name, v] : choices)
    if (v == e) return name;
  return "?";
}

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

// A per-channel parameter: None, one number for every channel, or one per output channel.
std::array<float, 3> per_channel(const char* arg, const py::object& value, int channels,
                                 float fallback) {
  std::array<float, 3> out{fallback, fallback, fallback};
  if (value.is_none()) return out;
  if (py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value)) {
    out.fill(value.cast<float>());
    return out;
  }
  std::vector<float> v;
  try {
    v = value.cast<std::vector<float>>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(arg) + " must be a number or a sequence of " +
                         std::to_string(channels) + " numbers; got " + type_name(value));
  }
  if (static_cast<int>(v.size()) != channels)
    throw py::value_error(std::string(arg) + " must have " + std::to_string(channels) +
                          " value(s), one per output channel; got " + std::to_string(v.size()));
  for (int c = 0; c < channels; ++c) out[static_cast<std::size_t>(c)] = v[static_cast<std::size_t>(c)];
  return out;
}

class PyPreprocessor {
 public:
  PyPreprocessor(const py::object& size, const py::object& src, const py::object& dst,
                 const py::object& layout, const py::object& dtype, const py::object& resize,
                 const py::object& mean, const py::object& std, const py::object& scale,
                 const py::object& zero_point, const py::object& roi, const py::object& fit,
                 const py::object& pad_value)
      : core_(make_spec(size, src, dst, layout, dtype, resize, mean, std, scale, zero_point, fit,
                        pad_value)) {
    if (!roi.is_none()) {
      std::vector<int> r;
      try {
        r = roi.cast<std::vector<int>>();
      } catch (const py::cast_error&) {
        throw py::type_error("roi must be (x, y, width, height) integers; got " + type_name(roi));
      }
      if (r.size() != 4 || r[0] < 0 || r[1] < 0 || r[2] < 1 || r[3] < 1)
        throw py::value_error(
            "roi must be (x, y, width, height) with x, y >= 0 and width, height >= 1");
      roi_ = edge::Rect{r[0], r[1], r[2], r[3]};
    }
  }

  std::vector<py::ssize_t> shape() const {
    const auto& s = core_.spec();
    const py::ssize_t c = core_.out_channels();
    if (s.layout == edge::Layout::NHWC) return {1, s.out_h, s.out_w, c};
    return {1, c, s.out_h, s.out_w};
  }

  py::tuple shape_tuple() const { return py::tuple(py::cast(shape())); }

  py::dtype dtype() const {
    switch (core_.spec().dtype) {
      case edge::DType::U8: return py::dtype::of<std::uint8_t>();
      case edge::DType::I8: return py::dtype::of<std::int8_t>();
      case edge::DType::F32: break;
    }
    return py::dtype::of<float>();
  }

  py::array call(const py::object& frame_obj, const py::object& out_obj) const {
    const edge::Frame frame = check_frame(frame_obj);
    edge::Rect roi = roi_.value_or(edge::Rect{0, 0, frame.width, frame.height});
    // In 64 bits: a ROI near INT_MAX must not wrap around into the frame.
    if (std::int64_t{roi.x} + roi.w > frame.width || std::int64_t{roi.y} + roi.h > frame.height) {
      std::ostringstream msg;
      msg << "roi (" << roi.x << ", " << roi.y << ", " << roi.w << ", " << roi.h
          << ") lies outside the " << frame.width << "x" << frame.height << " frame";
      throw py::value_error(msg.str());
    }
    py::array out = out_obj.is_none() ? py::array(dtype(), shape()) : check_out(out_obj);
    void* dst = out.mutable_data();
    {
      // Safe without the GIL: the kernel touches only the two buffers, kept alive by
      // frame_obj and out, and the preprocessor's plan cache, which has its own lock.
      py::gil_scoped_release release;
      core_.run(frame, roi, dst);
    }
    return out;
  }

  std::string repr() const {
    const auto& s = core_.spec();
    std::ostringstream r;
    r << "Preprocessor(size=(" << s.out_w << ", " << s.out_h << "), src='"
      << name_of(s.src, kSrc) << "', dst='" << name_of(s.dst, kDst) << "', layout='"
      << name_of(s.layout, kLayout) << "', dtype='" << name_of(s.dtype, kDtype) << "', resize='"
      << name_of(s.resize, kResize) << "', fit='" << name_of(s.fit, kFit) << "')";
    return r.str();
  }

 private:
  static edge::PreprocessSpec make_spec(const py::object& size, const py::object& src,
                                        const py::object& dst, const py::object& layout,
                                        const py::object& dtype, const py::object& resize,
                                        const py::object& mean, const py::object& std,
                                        const py::object& scale, const py::object& zero_point,
                                        const py::object& fit, const py::object& pad_value) {
    edge::PreprocessSpec s;
    std::vector<int> wh;
    try {
      wh = size.cast<std::vector<int>>();
    } catch (const py::cast_error&) {
      throw py::type_error("size must be (width, height) integers; got " + type_name(size));
    }
    if (wh.size() != 2 || wh[0] < 1 || wh[1] < 1)
      throw py::value_error("size must be (width, height) with both >= 1");
    s.out_w = wh[0];
    s.out_h = wh[1];
    s.src = parse("src", str_arg("src", src), kSrc);
    s.dst = parse("dst", str_arg("dst", dst), kDst);
    s.layout = parse("layout", str_arg("layout", layout), kLayout);
    s.dtype = parse("dtype", str_arg("dtype", dtype), kDtype);
    s.resize = parse("resize", str_arg("resize", resize), kResize);
    s.fit = parse("fit", str_arg("fit", fit), kFit);
    const int channels = edge::channels_of(s.dst);
    s.mean = per_channel("mean", mean, channels, 0.f);
    s.std = per_channel("std", std, channels, 1.f);
    if (s.dtype == edge::DType::F32 && !(scale.is_none() && zero_point.is_none()))
      throw py::value_error(
          "scale and zero_point quantize integer outputs; they do not apply to dtype='float32'");
    if (!scale.is_none()) s.scale = number_arg("scale", scale);
    if (!zero_point.is_none()) s.zero_point = number_arg("zero_point", zero_point);
    s.pad_value = number_arg("pad_value", pad_value);
    try {
      edge::Preprocessor probe(s);  // the core's own checks, with its messages
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
    return s;
  }

  edge::Frame check_frame(const py::object& obj) const {
    const edge::PixelFormat fmt = core_.spec().src;
    const char* src = name_of(fmt, kSrc);
    if (!py::isinstance<py::array>(obj))
      throw py::type_error("frame must be a numpy.ndarray of uint8; got " + type_name(obj));
    const auto a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(py::dtype::of<std::uint8_t>()))
      throw py::type_error("frame must have dtype uint8; got " +
                           std::string(py::str(a.dtype())));
    if (a.size() == 0) throw py::value_error("frame is empty: shape " + shape_str(a));

    const int bpp = edge::channels_of(fmt);
    const bool planar = fmt == edge::PixelFormat::NV12 || fmt == edge::PixelFormat::I420;
    std::string expected;
    bool ok;
    if (fmt == edge::PixelFormat::GRAY) {
      expected = "(height, width) or (height, width, 1)";
      ok = a.ndim() == 2 || (a.ndim() == 3 && a.shape(2) == 1);
    } else if (planar) {
      expected = "(height * 3 / 2, width), as OpenCV stores it";
      ok = a.ndim() == 2;
    } else {
      expected = "(height, width, " + std::to_string(bpp) + ")";
      ok = a.ndim() == 3 && a.shape(2) == bpp;
    }
    if (!ok)
      throw py::value_error("frame of src='" + std::string(src) + "' must have shape " + expected +
                            "; got " + shape_str(a));
    // By the shape alone, before a byte is read or a size is narrowed to int: a view may
    // claim more memory than it has.
    const py::ssize_t width = a.shape(1);
    const py::ssize_t height = planar ? a.shape(0) / 3 * 2 : a.shape(0);
    if (const auto error = edge::image_size_error("frame", width, height))
      throw py::value_error(*error + "; got shape " + shape_str(a));
    // Pixels within a row must be packed; rows may be any (positive) distance apart, so a
    // crop of a larger frame works without a copy.
    // (A channel axis of length 1, as from gray[..., None], may have any stride.)
    const bool packed = a.strides(1) == bpp &&
                        (a.ndim() == 2 || a.shape(2) == 1 || a.strides(2) == 1) &&
                        a.strides(0) >= width * bpp;
    if (!packed)
      throw py::value_error("frame must be C-contiguous within each row (got strides " +
                            std::string(py::str(py::tuple(py::cast(std::vector<py::ssize_t>(
                                a.strides(), a.strides() + a.ndim()))))) +
                            "); pass numpy.ascontiguousarray(frame)");
    edge::Frame f;
    f.data = static_cast<const std::uint8_t*>(a.data());
    f.width = static_cast<int>(width);
    f.height = static_cast<int>(a.shape(0));
    f.stride = a.strides(0);
    f.format = fmt;
    if (planar) {
      // height * 3 / 2 rows: a multiple of 3 rows means an even image height.
      if (f.height % 3 != 0 || f.width % 2 != 0)
        throw py::value_error("frame of src='" + std::string(src) +
                              "' needs an even width and height; got shape " + shape_str(a));
      f.height = f.height / 3 * 2;
      if (fmt == edge::PixelFormat::I420 && f.stride != f.width)
        throw py::value_error("frame of src='i420' must be C-contiguous (its planes are packed)");
    }
    if (fmt == edge::PixelFormat::YUYV && f.width % 2 != 0)
      throw py::value_error("frame of src='yuyv' needs an even width; got shape " + shape_str(a));
    return f;
  }

  py::array check_out(const py::object& obj) const {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error("out must be a numpy.ndarray; got " + type_name(obj));
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(dtype()))
      throw py::type_error("out must have dtype " + std::string(py::str(dtype())) + "; got " +
                           std::string(py::str(a.dtype())));
    const std::vector<py::ssize_t> want = shape();
    if (std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()) != want)
      throw py::value_error("out must have shape " + std::string(py::str(shape_tuple())) +
                            "; got " + shape_str(a));
    if (!(a.flags() & py::array::c_style))
      throw py::value_error("out must be C-contiguous");
    if (!a.writeable()) throw py::value_error("out must be writeable");
    return a;
  }

  edge::Preprocessor core_;
  std::optional<edge::Rect> roi_;
};

}  // namespace

void register_preprocess(py::module_& m) {
  m.attr("MAX_SIDE") = edge::kMaxOutputSide;
  py::class_<PyPreprocessor>(m, "Preprocessor")
      .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&,
                    const py::object&, const py::object&, const py::object&, const py::object&,
                    const py::object&, const py::object&, const py::object&, const py::object&,
                    const py::object&>(),
           py::kw_only(), py::arg("size"), py::arg("src") = py::str("bgr"), py::arg("dst") = py::str("rgb"),
           py::arg("layout") = py::str("nhwc"), py::arg("dtype") = py::str("uint8"),
           py::arg("resize") = py::str("area"),
           py::arg("mean") = py::none(), py::arg("std") = py::none(),
           py::arg("scale") = py::none(), py::arg("zero_point") = py::none(),
           py::arg("roi") = py::none(), py::arg("fit") = py::str("stretch"), py::arg("pad_value") = py::float_(0.0))
      .def("__call__", &PyPreprocessor::call, py::arg("frame"), py::arg("out") = py::none())
      .def_property_readonly("shape", &PyPreprocessor::shape_tuple)
      .def_property_readonly("dtype", &PyPreprocessor::dtype)
      .def("__repr__", &PyPreprocessor::repr);
}
