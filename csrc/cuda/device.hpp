// Device queries of the CUDA module (implemented in device.cu, bound in bindings_cuda.cpp).
// Plain C++ declarations: the binding file is compiled by the host compiler.
#pragma once

#include <string>

namespace sd {
namespace cuda {

/// Number of visible CUDA devices; 0 when there is no GPU or no (usable) driver.
int device_count();
/// Name of device i (throws std::runtime_error on a CUDA error).
std::string device_name(int i);
/// (major, minor) compute capability of device i.
void device_capability(int i, int* major, int* minor);
/// CUDA runtime version this module was built with (e.g. 13000).
int runtime_version();
/// Driver's CUDA version (0 when no driver is installed).
int driver_version();
/// Runs a tiny kernel on device i and returns true when its result is correct.
bool self_test(int i);

}  // namespace cuda
}  // namespace sd
