// Picks the variant of the hot loops once per process. EDGE_ISA=baseline forces the
// baseline variant, so tests can check both against the same references.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace edge {
namespace {

struct Choice {
  const detail::Kernels* kernels;
  const char* name;
};

Choice choose() {
  const char* forced = std::getenv("EDGE_ISA");
  const bool want_baseline = forced != nullptr && std::strcmp(forced, "baseline") == 0;
#if defined(EDGE_HAVE_AVX2_VARIANT)
  if (!want_baseline && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {&detail::avx2::kernels, "avx2"};
#else
  (void)want_baseline;
#endif
  return {&detail::baseline::kernels, "baseline"};
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

const detail::Kernels& detail::kernels() { return *choice().kernels; }
const char* active_isa() { return choice().name; }

}  // namespace edge
