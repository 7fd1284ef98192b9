// Rule D (TNN columns with STDP) on the GPU. Same semantics as csrc/sparsedream/tnn.hpp and
// sparsedream_fast/tnn/reference.py; the Philox draws (sparsedream/philox.hpp) make the
// weights identical bit for bit whatever thread draws them.
//
// One block runs whole sequences: the lines of the current and the previous wave live in
// shared memory, a thread per neuron finds its firing step, the block does the k-WTA, then
// a thread per synapse applies STDP. Training runs in one block (waves are sequential by
// nature, and each wave's updates feed the next); inference gives each block its own
// sequences, so a batch of images fills the GPU.
#include "cuda_common.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include "sparsedream/tnn_rule.hpp"
#include "tnn_cuda.hpp"

namespace sd {
namespace cuda {
namespace {

struct DevColumn {
    int n, d, theta, k, w_max, out0, in_off;
    StdpParams stdp;
    void* W;
};

template <class Wt>
__global__ void tnn_kernel(int T, int n_in, int n_lines, int n_delay, const int* __restrict__ delay_src,
                           const int* __restrict__ delay_dst, int n_cols, const DevColumn* __restrict__ cols,
                           const int* __restrict__ in_lines, const unsigned char* __restrict__ plastic, int R,
                           const int* __restrict__ record, const unsigned char* __restrict__ data, long long S,
                           int n_waves, bool learn, unsigned long long wave0, unsigned k0, unsigned k1,
                           int max_n, int max_d, unsigned char* __restrict__ rec) {
    SD_DYNAMIC_SMEM(int, smem_i);
    int* counts = smem_i;                         // T + 1
    int* active = counts + (T + 1);               // max_d
    int* fire = active + max_d;                   // max_n
    int* misc = fire + max_n;                     // [0] n_active, [1] cut, [2] winners left at cut
    unsigned char* lines = reinterpret_cast<unsigned char*>(misc + 4);  // n_lines
    unsigned char* prev = lines + n_lines;                               // n_lines
    unsigned char* x = prev + n_lines;                                   // max_d
    const int tid = threadIdx.x, nt = blockDim.x;
    unsigned long long wave = wave0;

    for (long long s = blockIdx.x; s < S; s += gridDim.x) {
        for (int m = tid; m < n_lines; m += nt) prev[m] = (unsigned char)T;
        __syncthreads();
        for (int wv = 0; wv < n_waves; ++wv) {
            const unsigned char* src = data + (s * n_waves + wv) * (long long)n_in;
            for (int m = tid; m < n_in; m += nt) lines[m] = src[m];
            for (int m = tid; m < n_delay; m += nt) lines[delay_dst[m]] = prev[delay_src[m]];
            __syncthreads();
            for (int c = 0; c < n_cols; ++c) {
                const DevColumn col = cols[c];
                const Wt* W = static_cast<const Wt*>(col.W);
                if (tid == 0) misc[0] = 0;
                for (int t = tid; t <= T; t += nt) counts[t] = 0;
                __syncthreads();
                for (int i = tid; i < col.d; i += nt) {
                    const unsigned char xi = lines[in_lines[col.in_off + i]];
                    x[i] = xi;
                    // the order of the active list does not matter: potentials are integer sums
                    if (xi < T) active[atomicAdd(&misc[0], 1)] = i;
                }
                __syncthreads();
                const int n_active = misc[0];
                for (int j = tid; j < col.n; j += nt) {
                    const Wt* w = W + (long long)j * col.d;
                    int f = T;
                    for (int t = 0; t < T && f == T; ++t) {
                        long long v = 0;
                        for (int a = 0; a < n_active; ++a) {
                            const int i = active[a];
                            const int r = t - int(x[i]) + 1;
                            const int wi = int(w[i]);
                            v += r <= 0 ? 0 : (r < wi ? r : wi);
                        }
                        if (v >= col.theta) f = t;
                    }
                    fire[j] = f;
                    atomicAdd(&counts[f], 1);
                }
                __syncthreads();
                if (tid == 0) {
                    int before = 0, cut = 0;
                    while (cut < T && before + counts[cut] < col.k) before += counts[cut++];
                    misc[1] = cut;
                    misc[2] = col.k - before;
                }
                __syncthreads();
                const int cut = misc[1], at_cut = misc[2];
                for (int j = tid; j < col.n; j += nt) {
                    const int f = fire[j];
                    bool win = f < cut;
                    if (!win && f == cut && cut < T) {
                        int rank = 0;  // earlier indices firing at the cutoff step go first
                        for (int q = 0; q < j; ++q) rank += fire[q] == cut;
                        win = rank < at_cut;
                    }
                    lines[col.out0 + j] = (unsigned char)(win ? f : T);
                }
                __syncthreads();
                if (learn) {
                    Wt* Wm = static_cast<Wt*>(col.W);
                    const unsigned wlo = (unsigned)wave, whi = (unsigned)(wave >> 32);
                    const long long nsyn = (long long)col.n * col.d;
                    for (long long q = tid; q < nsyn; q += nt) {
                        const int j = int(q / col.d), i = int(q - (long long)j * col.d);
                        if (!plastic[col.in_off + i]) continue;
                        bool up;
                        double p;
                        if (!stdp_case(x[i], lines[col.out0 + j], T, col.stdp, &p, &up)) continue;
                        const U32x4 r = philox4x32_10((unsigned)q, wlo, whi, (unsigned)c, k0, k1);
                        const long long w = (long long)Wm[q];
                        Wm[q] = Wt(stdp_new_weight(w, col.w_max, up, p, stdp_stability(w, col.w_max, up),
                                                   col.stdp.u_min, r.v[0], r.v[1], r.v[2]));
                    }
                    __syncthreads();
                }
            }
            unsigned char* r = rec + (s * n_waves + wv) * (long long)R;
            for (int m = tid; m < R; m += nt) r[m] = lines[record[m]];
            __syncthreads();
            for (int m = tid; m < n_lines; m += nt) prev[m] = lines[m];
            __syncthreads();
            if (learn) ++wave;
        }
    }
}

template <class Wt>
std::uint64_t run_typed(const TnnProgramDesc& prog, const std::uint8_t* data, std::int64_t S, std::int64_t n_waves,
                        bool learn, std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1, std::uint8_t* rec,
                        Poll& poll, RunResult& res) {
    res = RunResult();
    const int n_cols = int(prog.columns.size());
    std::vector<int> in_all;
    std::vector<unsigned char> plastic_all;
    std::vector<DevColumn> dcols(n_cols);
    std::vector<DevBuf*> wbufs;
    struct Cleanup {
        std::vector<DevBuf*>& b;
        ~Cleanup() {
            for (DevBuf* p : b) delete p;
        }
    } cleanup{wbufs};
    int max_n = 1, max_d = 1;
    for (int c = 0; c < n_cols; ++c) {
        const TnnColumnDesc& h = prog.columns[c];
        DevColumn& d = dcols[c];
        d.n = int(h.n), d.d = int(h.d);
        d.theta = int(std::min<std::int64_t>(h.theta, 2147483647));
        d.k = int(h.k), d.w_max = int(h.w_max), d.out0 = int(h.out0), d.in_off = int(in_all.size());
        d.stdp = StdpParams{h.p[0], h.p[1], h.p[2], h.p[3], h.p[4]};
        in_all.insert(in_all.end(), h.in_lines, h.in_lines + h.d);
        plastic_all.insert(plastic_all.end(), h.plastic, h.plastic + h.d);
        const size_t wb = size_t(h.n * h.d) * sizeof(Wt);
        wbufs.push_back(new DevBuf(wb));
        check(cudaMemcpy(wbufs.back()->p, h.W, wb, cudaMemcpyHostToDevice), "cudaMemcpy weights");
        d.W = wbufs.back()->p;
        max_n = std::max(max_n, d.n);
        max_d = std::max(max_d, d.d);
    }
    const int T = prog.T, R = int(prog.record.size());
    DevBuf d_cols(sizeof(DevColumn) * n_cols), d_in(sizeof(int) * in_all.size()),
        d_plastic(plastic_all.size()), d_dsrc(sizeof(int) * prog.delay_src.size()),
        d_ddst(sizeof(int) * prog.delay_dst.size()), d_record(sizeof(int) * R),
        d_data(size_t(S * n_waves * prog.n_in)), d_rec(size_t(S * n_waves * R));
    upload(d_cols, dcols.data(), dcols.size());
    upload(d_in, in_all.data(), in_all.size());
    upload(d_plastic, plastic_all.data(), plastic_all.size());
    upload(d_dsrc, prog.delay_src.data(), prog.delay_src.size());
    upload(d_ddst, prog.delay_dst.data(), prog.delay_dst.size());
    upload(d_record, prog.record.data(), prog.record.size());
    upload(d_data, data, size_t(S * n_waves * prog.n_in));

    const size_t smem = sizeof(int) * (T + 1 + max_d + max_n + 4) + 2 * size_t(prog.n_lines) + max_d;
    auto kernel = tnn_kernel<Wt>;
    if (smem > 48 * 1024)
        check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
              "network too large for shared memory (cudaFuncSetAttribute)");
    // a thread per neuron for the firing pass; training also spreads a column's synapses
    // over the threads in its STDP pass, so it takes a full block
    int threads = std::min(1024, std::max(learn ? 512 : 64, ((max_n + 31) / 32) * 32));
    int blocks = 1;
    if (!learn) {
        int dev = 0, sms = 1;
        check(cudaGetDevice(&dev), "cudaGetDevice");
        check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
        blocks = int(std::min<std::int64_t>(S, std::int64_t(sms) * 16));
        threads = std::min(threads, 256);
    }
    auto launch = [&](std::int64_t s0, std::int64_t s1) {  // sequences [s0, s1), waves counted from s0
        const std::int64_t off = s0 * n_waves;
        SD_LAUNCH(tnn_kernel<Wt>, int(std::min<std::int64_t>(blocks, s1 - s0)), threads, smem)(
            T, int(prog.n_in), int(prog.n_lines), int(prog.delay_src.size()), d_dsrc.as<int>(), d_ddst.as<int>(),
            n_cols, d_cols.as<DevColumn>(), d_in.as<int>(), d_plastic.as<unsigned char>(), R, d_record.as<int>(),
            d_data.as<unsigned char>() + off * prog.n_in, s1 - s0, int(n_waves), learn,
            wave0 + (learn ? std::uint64_t(off) : 0), k0, k1, max_n, max_d, d_rec.as<unsigned char>() + off * R);
        check(cudaGetLastError(), "TNN kernel launch");
        check(cudaDeviceSynchronize(), "TNN kernel");
    };
    if (S > 0 && n_waves > 0) {
        if (!learn) {
            launch(0, S);
            res.done = S;
        } else {
            // training: launches of about Poll::kPollSeconds, polled in between (Ctrl-C stops
            // the fit after a sequence)
            using Clock = std::chrono::steady_clock;
            std::int64_t chunk = 1;
            for (std::int64_t s0 = 0; s0 < S;) {
                const std::int64_t s1 = std::min(S, s0 + chunk);
                const Clock::time_point t0 = Clock::now();
                launch(s0, s1);
                const double took = std::chrono::duration<double>(Clock::now() - t0).count();
                if (took < Poll::kPollSeconds / 2) chunk *= 2;
                else if (took > 2 * Poll::kPollSeconds && chunk > 1) chunk /= 2;
                res.done = s0 = s1;
                if (s0 < S && poll.stop()) {
                    res.status = RUN_STOPPED;
                    break;
                }
            }
        }
    }
    if (R && res.done)
        check(cudaMemcpy(rec, d_rec.p, size_t(res.done * n_waves * R), cudaMemcpyDeviceToHost), "cudaMemcpy record");
    if (learn)
        for (int c = 0; c < n_cols; ++c) {
            const TnnColumnDesc& h = prog.columns[c];
            check(cudaMemcpy(h.W, wbufs[c]->p, size_t(h.n * h.d) * sizeof(Wt), cudaMemcpyDeviceToHost),
                  "cudaMemcpy weights back");
        }
    return learn ? wave0 + std::uint64_t(res.done * n_waves) : wave0;
}

}  // namespace

std::uint64_t tnn_run(const TnnProgramDesc& prog, const std::uint8_t* data, std::int64_t S, std::int64_t n_waves,
                      bool learn, std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1, std::uint8_t* rec, Poll& poll,
                      RunResult& res) {
    if (prog.weight_bytes == 1)
        return run_typed<std::uint8_t>(prog, data, S, n_waves, learn, wave0, k0, k1, rec, poll, res);
    return run_typed<std::int32_t>(prog, data, S, n_waves, learn, wave0, k0, k1, rec, poll, res);
}

}  // namespace cuda
}  // namespace sd
