// pybind11 bindings of the batch rules (DreamComp, Krotov-Hopfield) in module _core.
#include "bind_common.hpp"

namespace py = pybind11;

void bind_batch_rules(py::module_& m) {}
