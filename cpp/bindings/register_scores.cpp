// Bindings of the input gate's kernels: frame statistics, logit scores, embedding scores.
// Arrays are checked here, then the kernels run without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "frame_stats.h"
#include "scores.h"
#include "size_limits.h"

namespace py = pybind11;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A float32 array of `ndim` dimensions with every value finite; per-frame inputs are
// not converted, so a wrong dtype is an error rather than a silent copy. Axes from
// `first_limited` on are at most kMaxScoreLength long (axis 0 of a batch counts frames).
py::array_t<float> checked_floats(const py::object& obj, const char* arg, int ndim, bool convert,
                                  int first_limited = 0) {
  if (!py::isinstance<py::array>(obj) && !convert)
    throw py::type_error(std::string(arg) + " must be a numpy.ndarray of float32");
  py::array a = py::array::ensure(obj);
  if (!a) throw py::type_error(std::string(arg) + " must be an array of numbers");
  if (!convert && !a.dtype().is(py::dtype::of<float>()))
    throw py::type_error(std::string(arg) + " must have dtype float32; got " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw py::value_error(std::string(arg) + " must have " + std::to_string(ndim) +
                          " dimension(s); got shape " + shape_of(a));
  // By the shape alone, before the copy to contiguous float32: a broadcast view may claim
  // more values than memory holds.
  for (int axis = first_limited; axis < ndim; ++axis) {
    const char* what = ndim == 1 ? "values" : (axis == 0 ? "rows" : "columns");
    if (const auto error = edge::score_length_error(arg, what, a.shape(axis)))
      throw py::value_error(*error);
  }
  FloatArray f = FloatArray::ensure(a);
  if (!f) throw py::type_error(std::string(arg) + " must be an array of numbers");
  if (f.size() == 0) throw py::value_error(std::string(arg) + " is empty: shape " + shape_of(f));
  const float* p = f.data();
  for (py::ssize_t i = 0; i < f.size(); ++i)
    if (!std::isfinite(p[i]))
      throw py::value_error(std::string(arg) + " contains NaN or infinity");
  return f;
}

std::vector<float> to_vector(const py::array_t<float>& a) {
  return std::vector<float>(a.data(), a.data() + a.size());
}

// The layout of an 8-bit image: grey (H x W), or colour with the byte order `src`.
edge::Image image_view(const py::array& a, const std::string& src, int first_dim) {
  if (!a.dtype().is(py::dtype::of<std::uint8_t>()))
    throw py::type_error("image must have dtype uint8; got " + std::string(py::str(a.dtype())));
  edge::Image im;
  const py::ssize_t nd = a.ndim() - first_dim;
  if (src == "gray") {
    im.channels = 1;
    if (!(nd == 2 || (nd == 3 && a.shape(first_dim + 2) == 1)))
      throw py::value_error("image of src='gray' must be (height, width); got shape " +
                            shape_of(a));
  } else if (src == "bgr" || src == "rgb" || src == "bgra" || src == "rgba") {
    im.channels = static_cast<int>(src.size());
    if (nd != 3 || a.shape(first_dim + 2) != im.channels)
      throw py::value_error("image of src='" + src + "' must be (height, width, " +
                            std::to_string(im.channels) + "); got shape " + shape_of(a));
    const bool bgr_order = src[0] == 'b';
    im.red = bgr_order ? 2 : 0;
    im.blue = bgr_order ? 0 : 2;
  } else {
    throw py::value_error("src must be one of 'bgr', 'rgb', 'bgra', 'rgba', 'gray'; got '" +
                          src + "'");
  }
  if (a.size() == 0) throw py::value_error("image is empty: shape " + shape_of(a));
  // By the shape alone, before a byte is read or a size is narrowed to int.
  if (const auto error = edge::image_size_error(first_dim ? "each image of images" : "image",
                                                a.shape(first_dim + 1), a.shape(first_dim)))
    throw py::value_error(*error + "; got shape " + shape_of(a));
  im.height = static_cast<int>(a.shape(first_dim));
  im.width = static_cast<int>(a.shape(first_dim + 1));
  const bool packed = a.strides(first_dim + 1) == im.channels &&
                      (nd == 2 || a.strides(first_dim + 2) == 1) &&
                      a.strides(first_dim) >= im.width * im.channels;
  if (!packed)
    throw py::value_error("image must be C-contiguous within each row; pass "
                          "numpy.ascontiguousarray(image)");
  im.stride = a.strides(first_dim);
  im.data = static_cast<const std::uint8_t*>(a.data());
  return im;
}

edge::StatsOptions stats_options(int dark_level, int bright_level) {
  if (dark_level < 0 || dark_level > 255 || bright_level < 0 || bright_level > 255)
    throw py::value_error("dark_level and bright_level must be between 0 and 255");
  return {dark_level, bright_level};
}

py::array require_array(const py::object& obj, const char* arg) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(arg) + " must be a numpy.ndarray");
  return py::reinterpret_borrow<py::array>(obj);
}

float checked_temperature(double t) {
  if (!(std::isfinite(t) && t > 0)) throw py::value_error("temperature must be positive and finite");
  return static_cast<float>(t);
}

}  // namespace

void register_scores(py::module_& m) {
  py::class_<edge::FrameStats>(m, "FrameStats")
      .def_readonly("brightness", &edge::FrameStats::brightness)
      .def_readonly("contrast", &edge::FrameStats::contrast)
      .def_readonly("sharpness", &edge::FrameStats::sharpness)
      .def_readonly("dark", &edge::FrameStats::dark)
      .def_readonly("bright", &edge::FrameStats::bright)
      .def_readonly("dhash", &edge::FrameStats::dhash)
      .def("__repr__", [](const edge::FrameStats& s) {
        return "FrameStats(brightness=" + std::to_string(s.brightness) +
               ", contrast=" + std::to_string(s.contrast) +
               ", sharpness=" + std::to_string(s.sharpness) + ", dark=" + std::to_string(s.dark) +
               ", bright=" + std::to_string(s.bright) + ", dhash=" + std::to_string(s.dhash) + ")";
      });

  m.def(
      "frame_stats",
      [](const py::object& image, const std::string& src, int dark_level, int bright_level) {
        const py::array a = require_array(image, "image");
        const edge::Image im = image_view(a, src, 0);
        const edge::StatsOptions opt = stats_options(dark_level, bright_level);
        // Safe without the GIL: reads only the image buffer, kept alive by `a`.
        py::gil_scoped_release release;
        return edge::frame_stats(im, opt);
      },
      py::arg("image"), py::kw_only(), py::arg("src") = "bgr", py::arg("dark_level") = 16,
      py::arg("bright_level") = 239);

  m.def(
      "frame_stats_batch",
      [](const py::object& images, const std::string& src, int dark_level, int bright_level) {
        const py::array a = require_array(images, "images");
        if (a.ndim() < 1 || a.shape(0) == 0)
          throw py::value_error("images must be a non-empty batch (N, height, width[, channels])");
        const edge::Image first = image_view(a, src, 1);
        const edge::StatsOptions opt = stats_options(dark_level, bright_level);
        const py::ssize_t n = a.shape(0);
        py::array_t<float> brightness(n), contrast(n), sharpness(n), dark(n), bright(n);
        py::array_t<std::uint64_t> dhash(n);
        {
          // Safe without the GIL: reads the batch and writes the result arrays, all held here.
          py::gil_scoped_release release;
          for (py::ssize_t i = 0; i < n; ++i) {
            edge::Image im = first;
            im.data = static_cast<const std::uint8_t*>(a.data()) + i * a.strides(0);
            const edge::FrameStats s = edge::frame_stats(im, opt);
            brightness.mutable_at(i) = s.brightness, contrast.mutable_at(i) = s.contrast;
            sharpness.mutable_at(i) = s.sharpness, dark.mutable_at(i) = s.dark;
            bright.mutable_at(i) = s.bright, dhash.mutable_at(i) = s.dhash;
          }
        }
        py::dict out;
        out["brightness"] = brightness, out["contrast"] = contrast, out["sharpness"] = sharpness;
        out["dark"] = dark, out["bright"] = bright, out["dhash"] = dhash;
        return out;
      },
      py::arg("images"), py::kw_only(), py::arg("src") = "bgr", py::arg("dark_level") = 16,
      py::arg("bright_level") = 239);

  m.def("hamming", &edge::hamming, py::arg("a"), py::arg("b"));

  py::class_<edge::LogitScores>(m, "LogitScores")
      .def_readonly("top", &edge::LogitScores::top)
      .def_readonly("max_logit", &edge::LogitScores::max_logit)
      .def_readonly("msp", &edge::LogitScores::msp)
      .def_readonly("energy", &edge::LogitScores::energy)
      .def_readonly("entropy", &edge::LogitScores::entropy);

  m.def(
      "logit_scores",
      [](const py::object& logits, double temperature) {
        const float t = checked_temperature(temperature);
        const auto l = checked_floats(logits, "logits", 1, false);
        py::array_t<float> probs(l.shape(0));
        float* p = probs.mutable_data();
        edge::LogitScores s;
        {
          py::gil_scoped_release release;  // the two arrays are held by this frame
          s = edge::logit_scores(l.data(), static_cast<int>(l.shape(0)), t, p);
        }
        return py::make_tuple(s, probs);
      },
      py::arg("logits"), py::arg("temperature") = 1.0);

  m.def(
      "logit_scores_batch",
      [](const py::object& logits, double temperature) {
        const float t = checked_temperature(temperature);
        const auto l = checked_floats(logits, "logits", 2, true, 1);
        const py::ssize_t n = l.shape(0), c = l.shape(1);
        py::array_t<float> msp(n), energy(n), entropy(n), max_logit(n);
        py::array_t<std::int64_t> top(n);
        {
          py::gil_scoped_release release;  // all arrays are held by this frame
          for (py::ssize_t i = 0; i < n; ++i) {
            const auto s = edge::logit_scores(l.data() + i * c, static_cast<int>(c), t, nullptr);
            msp.mutable_at(i) = s.msp, energy.mutable_at(i) = s.energy;
            entropy.mutable_at(i) = s.entropy, max_logit.mutable_at(i) = s.max_logit;
            top.mutable_at(i) = s.top;
          }
        }
        py::dict out;
        out["top"] = top, out["max_logit"] = max_logit, out["msp"] = msp;
        out["energy"] = energy, out["entropy"] = entropy;
        return out;
      },
      py::arg("logits"), py::arg("temperature") = 1.0);

  py::class_<edge::OodScorer>(m, "OodScorer")
      .def(py::init([](const py::object& center, const py::object& projection,
                       const py::object& whitener, const py::object& class_means,
                       const py::object& bank, int k) {
             edge::OodReference r;
             const auto c = checked_floats(center, "center", 1, true);
             const auto w = checked_floats(whitener, "whitener", 2, true);
             const auto means = checked_floats(class_means, "class_means", 2, true);
             const auto b = checked_floats(bank, "bank", 2, true);
             r.dim_in = static_cast<int>(c.shape(0));
             r.dim = static_cast<int>(w.shape(0));
             r.center = to_vector(c);
             if (!projection.is_none()) {
               const auto p = checked_floats(projection, "projection", 2, true);
               if (p.shape(1) != r.dim_in)
                 throw py::value_error("projection must be (dim, " + std::to_string(r.dim_in) +
                                       "); got " + shape_of(p));
               r.projection = to_vector(p);
             }
             if (w.shape(1) != r.dim)
               throw py::value_error("whitener must be square; got " + shape_of(w));
             if (means.shape(1) != r.dim || b.shape(1) != r.dim)
               throw py::value_error("class_means and bank must have " + std::to_string(r.dim) +
                                     " columns, like the whitener");
             r.whitener = to_vector(w);
             r.class_means = to_vector(means);
             r.bank = to_vector(b);
             r.classes = static_cast<int>(means.shape(0));
             r.bank_size = static_cast<int>(b.shape(0));
             r.k = k;
             try {
               return std::make_unique<edge::OodScorer>(r);
             } catch (const std::invalid_argument& e) {
               throw py::value_error(e.what());
             }
           }),
           py::kw_only(), py::arg("center"), py::arg("projection"), py::arg("whitener"),
           py::arg("class_means"), py::arg("bank"), py::arg("k"))
      .def_property_readonly("dim_in", [](const edge::OodScorer& s) { return s.dim_in(); })
      .def(
          "score",
          [](const edge::OodScorer& s, const py::object& embedding) {
            const auto e = checked_floats(embedding, "embedding", 1, false);
            if (e.shape(0) != s.dim_in())
              throw py::value_error("embedding must have " + std::to_string(s.dim_in()) +
                                    " values; got " + std::to_string(e.shape(0)));
            edge::EmbeddingScores r;
            {
              py::gil_scoped_release release;  // the scorer is immutable; `e` is held here
              r = s.score(e.data());
            }
            return py::make_tuple(r.mahalanobis, r.nearest_class, r.knn);
          },
          py::arg("embedding"))
      .def(
          "score_batch",
          [](const edge::OodScorer& s, const py::object& embeddings) {
            const auto e = checked_floats(embeddings, "embeddings", 2, true, 1);
            const py::ssize_t n = e.shape(0), d = e.shape(1);
            if (d != s.dim_in())
              throw py::value_error("embeddings must have " +
                                    std::to_string(s.dim_in()) + " columns; got " +
                                    std::to_string(d));
            py::array_t<float> maha(n), knn(n);
            py::array_t<std::int64_t> nearest(n);
            {
              py::gil_scoped_release release;  // the scorer is immutable; arrays held here
              for (py::ssize_t i = 0; i < n; ++i) {
                const auto r = s.score(e.data() + i * d);
                maha.mutable_at(i) = r.mahalanobis, knn.mutable_at(i) = r.knn;
                nearest.mutable_at(i) = r.nearest_class;
              }
            }
            py::dict out;
            out["mahalanobis"] = maha, out["nearest_class"] = nearest, out["knn"] = knn;
            return out;
          },
          py::arg("embeddings"));
}
