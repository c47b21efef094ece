// edge._core: wires the per-area registrations together; nothing else lives here.
#include <pybind11/pybind11.h>

#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "kernels.h"
#include "preprocess.h"

namespace py = pybind11;

void register_preprocess(py::module_& m);
void register_scores(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "C++ core of edge (private: use the edge package)";
  // Chosen here, at import, so a bad EDGE_ISA fails `import edge` (pybind11 turns the
  // exception into ImportError, naming the variants this CPU runs) rather than the first frame.
  edge::active_isa();
  m.def("active_isa", &edge::active_isa,
        "Variant of the hot loops in use: scalar, baseline, avx2, neon or dotprod (EDGE_ISA "
        "forces one).");
  // Private: the tests and benchmarks loop over it to run each variant (EDGE_ISA).
  m.def("runnable_isas", [] {
    std::vector<std::string> names;
    for (const edge::detail::Kernels* k : edge::detail::runnable_variants()) names.push_back(k->name);
    return names;
  }, "The variants EDGE_ISA may name on this CPU, slowest first (scalar is the reference).");
  register_preprocess(m);
  register_scores(m);
}
