#include "scores.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels.h"

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
  }
  const double log_z = std::log(z);
  s.msp = static_cast<float>(1.0 / z);
  s.energy = static_cast<float>(-temperature * (m + log_z));
  // H = -sum p log p with p = e^a / z, log p = a - log z.
  s.entropy = static_cast<float>(log_z - weighted / z);
  if (probs != nullptr)
    for (int i = 0; i < n; ++i)
      probs[i] = static_cast<float>(std::exp(logits[i] * inv_t - m) / z);
  return s;
}

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

OodScorer::OodScorer(OodReference ref) : ref_(std::move(ref)) {
  const auto& r = ref_;
  const auto sz = [](int a, int b) { return static_cast<std::size_t>(a) * static_cast<std::size_t>(b); };
  require(r.dim_in > 0 && r.dim > 0, "dimensions must be positive");
  require(r.center.size() == static_cast<std::size_t>(r.dim_in), "center must have dim_in values");
  require(r.projection.empty() ? r.dim == r.dim_in : r.projection.size() == sz(r.dim, r.dim_in),
          "projection must be dim x dim_in (or empty when dim == dim_in)");
  require(r.whitener.size() == sz(r.dim, r.dim), "whitener must be dim x dim");
  require(r.classes > 0 && r.class_means.size() == sz(r.classes, r.dim),
          "class_means must be classes x dim with at least one class");
  require(r.bank_size > 0 && r.bank.size() == sz(r.bank_size, r.dim),
          "bank must be bank_size x dim with at least one row");
  require(r.k >= 1 && r.k <= r.bank_size, "k must be between 1 and the bank size");
  mean_norms_.resize(static_cast<std::size_t>(r.classes));
  for (int c = 0; c < r.classes; ++c) {
    const float* m = r.class_means.data() + sz(c, r.dim);
    double s = 0;
    for (int i = 0; i < r.dim; ++i) s += static_cast<double>(m[i]) * m[i];
    mean_norms_[static_cast<std::size_t>(c)] = static_cast<float>(s);
  }
}

EmbeddingScores OodScorer::score(const float* embedding) const {
  const auto& r = ref_;
  const detail::Kernels& k = detail::kernels();
  thread_local std::vector<float> centred, e, z, dots;
  centred.resize(static_cast<std::size_t>(r.dim_in));
  e.resize(static_cast<std::size_t>(r.dim));
  z.resize(static_cast<std::size_t>(r.dim));
  dots.resize(static_cast<std::size_t>(std::max(r.classes, r.bank_size)));

  for (int i = 0; i < r.dim_in; ++i) centred[i] = embedding[i] - r.center[i];
  if (r.projection.empty()) e = centred;
  else k.matvec(e.data(), r.projection.data(), r.dim, r.dim_in, centred.data(), false);

  EmbeddingScores out;
  // Mahalanobis: |z - m_c|^2 = |z|^2 - 2 z.m_c + |m_c|^2, minimised over the classes.
  k.matvec(z.data(), r.whitener.data(), r.dim, r.dim, e.data(), true);
  double zz = 0;
  for (float v : z) zz += static_cast<double>(v) * v;
  k.matvec(dots.data(), r.class_means.data(), r.classes, r.dim, z.data(), false);
  double best = INFINITY;
  for (int c = 0; c < r.classes; ++c) {
    const double d = zz - 2.0 * dots[c] + mean_norms_[c];
    if (d < best) best = d, out.nearest_class = c;
  }
  out.mahalanobis = static_cast<float>(std::max(0.0, best));

  // k-NN: on unit vectors |q - b|^2 = 2 - 2 q.b, so the k-th neighbour is the k-th largest dot.
  double norm = 0;
  for (float v : e) norm += static_cast<double>(v) * v;
  const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.f;
  for (float& v : e) v *= inv;
  k.matvec(dots.data(), r.bank.data(), r.bank_size, r.dim, e.data(), false);
  auto kth = dots.begin() + (r.k - 1);
  std::nth_element(dots.begin(), kth, dots.begin() + r.bank_size, std::greater<float>());
  out.knn = std::sqrt(std::max(0.f, 2.f - 2.f * *kth));
  return out;
}

}  // namespace edge
