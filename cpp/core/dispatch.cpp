// Picks the variant of the hot loops once per process: EDGE_ISA's when set (scalar, baseline,
// avx2, neon, dotprod), else the fastest this CPU runs. A name that is unknown, not built for
// this target or not supported by this CPU is an error rather than a quiet fallback, so a
// test run under EDGE_ISA tests the variant it names.
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "kernels.h"

namespace edge {
namespace {

const detail::Kernels* choose() {
  const std::vector<const detail::Kernels*> runnable = detail::runnable_variants();
  const char* forced = std::getenv("EDGE_ISA");
  if (forced == nullptr || *forced == '\0') return runnable.back();
  for (const detail::Kernels* k : runnable)
    if (std::strcmp(k->name, forced) == 0) return k;
  bool known = false;
  for (const char* const* n = detail::known_variants(); *n != nullptr; ++n)
    known = known || std::strcmp(*n, forced) == 0;
  std::string can;
  for (const detail::Kernels* k : runnable) can += std::string(can.empty() ? "" : ", ") + k->name;
  throw std::invalid_argument(
      std::string("EDGE_ISA=") + forced +
      (known ? ": that variant is not built for this target or this CPU cannot run it"
             : ": unknown variant") +
      "; this CPU can run: " + can + " (unset EDGE_ISA for the fastest)");
}

}  // namespace

namespace detail {

const char* const* known_variants() {
  static const char* const names[] = {"scalar", "baseline", "avx2", "neon", "dotprod", nullptr};
  return names;
}

std::vector<const Kernels*> runnable_variants() {
  std::vector<const Kernels*> v = {&scalar::kernels, &baseline::kernels};
#if defined(EDGE_HAVE_AVX2_VARIANT)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v.push_back(&avx2::kernels);
#endif
#if defined(EDGE_HAVE_NEON_VARIANT)
  v.push_back(&neon::kernels);  // ASIMD is mandatory in ARMv8-A
#endif
#if defined(EDGE_HAVE_DOTPROD_VARIANT)
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) v.push_back(&dotprod::kernels);
#endif
  return v;
}

// Initialised on first use; when EDGE_ISA is bad the exception propagates and the next call
// tries again, so every entry point reports it (the module reports it at import).
const Kernels& kernels() {
  static const Kernels* chosen = choose();
  return *chosen;
}

}  // namespace detail

const char* active_isa() { return detail::kernels().name; }

}  // namespace edge
