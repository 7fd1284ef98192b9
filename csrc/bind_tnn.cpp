// pybind11 bindings of the TNN columns (rule D) in module _core.
#include "bind_common.hpp"

namespace py = pybind11;

void bind_tnn(py::module_& m) {}
