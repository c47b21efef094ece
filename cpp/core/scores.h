// How far a model's outputs are from what it saw in training: scores from the logits
// (maximum softmax probability, energy, entropy, all with a temperature) and from the
// embedding (Mahalanobis distance to the nearest class mean, k-nearest-neighbour distance
// to a reference bank). All of these are computed per frame; the reference itself is fitted
// once, at calibration.
#pragma once

#include <cstdint>
#include <vector>

namespace edge {

struct LogitScores {
  int top = -1;          // index of the largest logit
  float max_logit = 0;
  float msp = 0;         // largest softmax(logits / T) probability
  float energy = 0;      // -T * logsumexp(logits / T): higher is more out of distribution
  float entropy = 0;     // of softmax(logits / T), in nats
};

// `probs` (n values) receives softmax(logits / temperature) unless null. Logits must be
// finite and temperature positive (the binding checks).
LogitScores logit_scores(const float* logits, int n, float temperature, float* probs);

// The OOD reference, in the space the scores are measured in: embeddings are centred,
// optionally projected (dim x dim_in), then whitened for Mahalanobis (z = whitener * e with
// the lower-triangular inverse Cholesky factor of the shared covariance) or L2-normalised
// for the k-NN bank.
struct OodReference {
  int dim_in = 0, dim = 0;
  std::vector<float> center;       // dim_in
  std::vector<float> projection;   // dim x dim_in row-major; empty when dim == dim_in
  std::vector<float> whitener;     // dim x dim, lower-triangular, row-major
  std::vector<float> class_means;  // classes x dim, whitened
  std::vector<float> bank;         // bank_size x dim, unit rows
  int classes = 0, bank_size = 0, k = 1;
};

struct EmbeddingScores {
  float mahalanobis = 0;  // squared distance to the nearest class mean
  int nearest_class = -1;
  float knn = 0;          // Euclidean distance of the unit embedding to its k-th neighbour
};

// A matrix kept as int8 rows with a scale each: row r is codes[r, :] * scales[r]. Scoring a
// frame reads every row of the projection, the class means and the bank once, and that
// reading is what a frame costs; int8 is a quarter of the bytes of float32.
struct Int8Rows {
  int rows = 0, cols = 0;
  std::vector<std::int8_t> codes;  // rows x cols, row-major
  std::vector<float> scales;       // rows

  // Rounds each row to 255 levels spread over its largest magnitude. A row already on such
  // a grid (what the Python side fits) comes back unchanged, to float rounding.
  static Int8Rows quantize(const std::vector<float>& values, int rows, int cols);
  // y[r] = scales[r] * dot(codes[r, :], x) for every row.
  void multiply(float* y, const float* x) const;
};

class OodScorer {
 public:
  // Throws std::invalid_argument naming the field when sizes disagree.
  explicit OodScorer(const OodReference& ref);
  EmbeddingScores score(const float* embedding) const;  // thread-safe
  int dim_in() const { return dim_in_; }

 private:
  int dim_in_ = 0, dim_ = 0, k_ = 1;
  std::vector<float> center_;
  Int8Rows projection_;            // empty when dim == dim_in
  std::vector<float> whitener_;    // float32: the triangular solve is small and sensitive
  Int8Rows class_means_, bank_;
  std::vector<float> mean_norms_;  // |m_k|^2 of the whitened class means, as stored
};

}  // namespace edge
