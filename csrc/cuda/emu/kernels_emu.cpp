// The CUDA sources of the _cuda module, compiled by the host compiler against the emulator
// (this directory comes first on the include path, so <cuda_runtime.h> is emu's).
#include "../device.cu"
#include "../dreamcomp.cu"
#include "../krotov.cu"
#include "../rule_a.cu"
#include "../tnn.cu"
