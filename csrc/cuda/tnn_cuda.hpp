// Rule D (TNN columns) on the GPU: host interface of csrc/cuda/tnn.cu, plain C++ types so
// that the binding file is compiled by the host compiler.
#pragma once

#include <cstdint>
#include <vector>

#include "sparsedream/run_control.hpp"
#include "sparsedream/tnn_program.hpp"

namespace sd {
namespace cuda {

/// Runs the program over data (S, n_waves, n_in) uint8 on the current GPU: training in one
/// block (waves are sequential), inference with one block per sequence. Writes rec
/// (S, n_waves, R) and, when learning, the columns' weights back to the host. Returns the
/// wave counter after the last learning wave. Training runs in launches of about
/// Poll::kPollSeconds and stops after a sequence when `poll` says so (rec and the weights
/// then hold the sequences completed, res.done). Throws std::runtime_error on CUDA errors.
std::uint64_t tnn_run(const TnnProgramDesc& prog, const std::uint8_t* data, std::int64_t S, std::int64_t n_waves,
                      bool learn, std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1, std::uint8_t* rec, Poll& poll,
                      RunResult& res);

}  // namespace cuda
}  // namespace sd
