// edge._core: wires the per-area registrations together; nothing else lives here.
#include <pybind11/pybind11.h>

#include "preprocess.h"

namespace py = pybind11;

void register_preprocess(py::module_& m);
void register_scores(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "C++ core of edge (private: use the edge package)";
  // Chosen here, at import, so a bad EDGE_ISA fails `import edge` (as ValueError) rather
  // than the first frame.
  edge::active_isa();
  m.def("active_isa", &edge::active_isa,
        "Variant of the hot loops in use: scalar, baseline, avx2, neon or dotprod (EDGE_ISA "
        "forces one).");
  register_preprocess(m);
  register_scores(m);
}
