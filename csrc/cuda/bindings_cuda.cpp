// pybind11 bindings of the optional CUDA module sparsedream_fast._cuda.
// Importing it never touches the GPU; device_count() is 0 (not an error) without a GPU or
// a driver. CUDA errors become RuntimeError.
#include <pybind11/pybind11.h>

#include "device.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "Optional CUDA module of sparsedream_fast (device queries; kernels to come).";
    m.def("device_count", &sd::cuda::device_count,
          "Number of visible CUDA GPUs (0 when there is none or no driver; never raises for that).");
    m.def("device_name", &sd::cuda::device_name, py::arg("i") = 0, "Name of GPU i.");
    m.def(
        "device_capability",
        [](int i) {
            int major = 0, minor = 0;
            sd::cuda::device_capability(i, &major, &minor);
            return py::make_tuple(major, minor);
        },
        py::arg("i") = 0, "Compute capability (major, minor) of GPU i.");
    m.def("runtime_version", &sd::cuda::runtime_version,
          "CUDA runtime version the module was built with (1000 * major + 10 * minor).");
    m.def("driver_version", &sd::cuda::driver_version, "CUDA version of the installed driver (0: none).");
    m.def("self_test", &sd::cuda::self_test, py::arg("i") = 0,
          "Run a tiny kernel on GPU i; True when its result is right.");
}
