#include "scores.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels.h"
#include "preprocess.h"

namespace edge {

LogitScores logit_scores(const float* logits, int n, float temperature, float* probs) {
  LogitScores s;
  s.top = static_cast<int>(std::max_element(logits, logits + n) - logits);
  s.max_logit = logits[s.top];
  // Shifted by the largest logit so exp() cannot overflow.
  const double inv_t = 1.0 / temperature;
  const double m = s.max_logit * inv_t;
  double z = 0, weighted = 0;
  for (int i = 0; i < n; ++i) {
    const double a = logits[i] * inv_t - m;
    const double e = std::exp(a);
    z += e;
    weighted += e * a;
    if (probs != nullptr) probs[i] = static_cast<float>(e);  // normalised below
  }
  const double log_z = std::log(z);
  s.msp = static_cast<float>(1.0 / z);
  s.energy = static_cast<float>(-temperature * (m + log_z));
  // H = -sum p log p with p = e^a / z, log p = a - log z.
  s.entropy = static_cast<float>(log_z - weighted / z);
  if (probs != nullptr) {
    const float inv_z = static_cast<float>(1.0 / z);
    for (int i = 0; i < n; ++i) probs[i] *= inv_z;
  }
  return s;
}

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

std::size_t area(int rows, int cols) {
  return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
}

}  // namespace

Int8Rows Int8Rows::quantize(const std::vector<float>& values, int rows, int cols) {
  Int8Rows m;
  m.rows = rows, m.cols = cols;
  m.codes.resize(area(rows, cols));
  m.scales.resize(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    const float* row = values.data() + area(r, cols);
    float largest = 0;
    for (int i = 0; i < cols; ++i) largest = std::max(largest, std::fabs(row[i]));
    const float scale = largest > 0 ? largest / 127.f : 1.f;
    m.scales[static_cast<std::size_t>(r)] = scale;
    for (int i = 0; i < cols; ++i)
      m.codes[area(r, cols) + static_cast<std::size_t>(i)] =
          static_cast<std::int8_t>(std::lround(row[i] / scale));
  }
  return m;
}

void Int8Rows::multiply(float* y, const float* x) const {
  detail::kernels().int8_rows(y, codes.data(), scales.data(), rows, cols, x);
}

OodScorer::OodScorer(const OodReference& r) {
  require(r.dim_in > 0 && r.dim > 0, "dimensions must be positive");
  require(r.center.size() == static_cast<std::size_t>(r.dim_in), "center must have dim_in values");
  require(r.projection.empty() ? r.dim == r.dim_in : r.projection.size() == area(r.dim, r.dim_in),
          "projection must be dim x dim_in (or empty when dim == dim_in)");
  require(r.whitener.size() == area(r.dim, r.dim), "whitener must be dim x dim");
  require(r.classes > 0 && r.class_means.size() == area(r.classes, r.dim),
          "class_means must be classes x dim with at least one class");
  require(r.bank_size > 0 && r.bank.size() == area(r.bank_size, r.dim),
          "bank must be bank_size x dim with at least one row");
  require(r.k >= 1 && r.k <= r.bank_size, "k must be between 1 and the bank size");
  dim_in_ = r.dim_in, dim_ = r.dim, k_ = r.k;
  center_ = r.center;
  if (!r.projection.empty()) projection_ = Int8Rows::quantize(r.projection, r.dim, r.dim_in);
  whitener_ = r.whitener;
  class_means_ = Int8Rows::quantize(r.class_means, r.classes, r.dim);
  bank_ = Int8Rows::quantize(r.bank, r.bank_size, r.dim);
  mean_norms_.resize(static_cast<std::size_t>(r.classes));
  for (int c = 0; c < r.classes; ++c) {
    double s = 0;
    for (int i = 0; i < r.dim; ++i) {
      const double v = class_means_.codes[area(c, r.dim) + static_cast<std::size_t>(i)];
      s += v * v;
    }
    const double scale = class_means_.scales[static_cast<std::size_t>(c)];
    mean_norms_[static_cast<std::size_t>(c)] = static_cast<float>(s * scale * scale);
  }
}

EmbeddingScores OodScorer::score(const float* embedding) const {
  thread_local std::vector<float> centred, e, z, dots;
  centred.resize(static_cast<std::size_t>(dim_in_));
  e.resize(static_cast<std::size_t>(dim_));
  z.resize(static_cast<std::size_t>(dim_));
  dots.resize(static_cast<std::size_t>(std::max(class_means_.rows, bank_.rows)));

  for (int i = 0; i < dim_in_; ++i) centred[i] = embedding[i] - center_[i];
  if (projection_.rows == 0) e = centred;
  else projection_.multiply(e.data(), centred.data());

  EmbeddingScores out;
  // Mahalanobis: |z - m_c|^2 = |z|^2 - 2 z.m_c + |m_c|^2, minimised over the classes.
  detail::kernels().matvec(z.data(), whitener_.data(), dim_, dim_, e.data(), true);
  double zz = 0;
  for (float v : z) zz += static_cast<double>(v) * v;
  class_means_.multiply(dots.data(), z.data());
  double best = INFINITY;
  for (int c = 0; c < class_means_.rows; ++c) {
    const double d = zz - 2.0 * dots[c] + mean_norms_[c];
    if (d < best) best = d, out.nearest_class = c;
  }
  out.mahalanobis = static_cast<float>(std::max(0.0, best));

  // k-NN: on unit vectors |q - b|^2 = 2 - 2 q.b, so the k-th neighbour is the k-th largest dot.
  double norm = 0;
  for (float v : e) norm += static_cast<double>(v) * v;
  const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.f;
  for (float& v : e) v *= inv;
  bank_.multiply(dots.data(), e.data());
  auto kth = dots.begin() + (k_ - 1);
  std::nth_element(dots.begin(), kth, dots.begin() + bank_.rows, std::greater<float>());
  out.knn = std::sqrt(std::max(0.f, 2.f - 2.f * *kth));
  return out;
}

}  // namespace edge
