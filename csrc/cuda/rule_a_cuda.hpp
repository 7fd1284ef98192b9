// Rule A (SparseDream) on the GPU: host interface of csrc/cuda/rule_a.cu, plain C++ types
// so that the binding file is compiled by the host compiler.
#pragma once

#include <cstdint>

#include "sparsedream/rule_a_config.hpp"
#include "sparsedream/run_control.hpp"

namespace sd {
namespace cuda {

/// Host arrays of the lateral operator (kind sd::LAT_*; unused pointers null).
template <class T>
struct RuleALateral {
    int kind = LAT_NONE;
    const T* kernel = nullptr;     ///< (2r+1)^2 stencil, row-major
    int radius = 0;
    const T* row_scale = nullptr;  ///< (N,) or null
    const std::int64_t* indptr = nullptr;
    const std::int32_t* indices = nullptr;
    T* data = nullptr;             ///< CSR values, written back when learned or clipped
    std::int64_t nnz = 0;
};

/// Trains in place: W (N, D), trace (N,) and a learned / clipped lateral's data are host
/// arrays copied to the GPU and back. X is (n, D): a host array, or a device pointer when
/// x_on_device. order (E, S) host. The run is a series of cooperative kernel launches of a
/// few tens of milliseconds, `poll` asked between them; it stops there on the poll's word,
/// and before a step whose update is not finite. Returns the steps done and why it ended.
/// blocks > 0 asks for that many blocks (tests); 0 picks one per multiprocessor.
/// Writes the last completed step's k winners to last_winners. Throws std::runtime_error on
/// CUDA errors and std::invalid_argument when the GPU cannot run the configuration.
template <class T>
RunResult rule_a_fit(const RuleAConfig& cfg, T* W, T* trace, const RuleALateral<T>& lat, const T* X, std::int64_t n,
                     bool x_on_device, const std::int64_t* order, std::int64_t E, std::int64_t S, bool reset_trace,
                     std::int64_t step0, int blocks, std::int64_t* last_winners, Poll& poll);

/// Winners (n, k) and their activity for every row of X (n, D) host, without learning.
template <class T>
void rule_a_infer(const RuleAConfig& cfg, const T* W, const RuleALateral<T>& lat, const T* X, std::int64_t n,
                  bool x_on_device, std::int64_t* winners, T* values);

/// Free and total device memory in bytes.
void mem_info(std::size_t* free_bytes, std::size_t* total_bytes);

}  // namespace cuda
}  // namespace sd
