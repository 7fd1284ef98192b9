// The CPU emulator's scheduler and runtime (see cuda_runtime.h in this directory).
//
// A fiber is entered the first time with swapcontext (which sets up its stack) and from
// then on switched with _setjmp/_longjmp, which do not save the signal mask: two system
// calls less per switch, and switches are most of the emulator's time. Fortified longjmp
// refuses to jump to another stack, hence the #undef.
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <ucontext.h>

#include "cuda_runtime.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <vector>

namespace sd_emu {
namespace {

enum class State { Runnable, AtBlock, AtWarp, AtGrid, Done };

constexpr size_t kStack = 128 * 1024;
// Fresh device and shared memory hold this byte, not zeros: a kernel that reads what it
// never wrote sees garbage, as on a GPU.
constexpr int kGarbage = 0xA5;

struct Fiber {
    ucontext_t ctx;
    jmp_buf jb;
    bool started = false;
    char* stack = nullptr;
    State state = State::Runnable;
    ThreadView view{};
    unsigned block = 0, warp = 0, lane = 0;  // block and warp index within the running set
    ~Fiber() { std::free(stack); }
};

struct Run {
    std::vector<std::unique_ptr<Fiber>> fibers;
    std::vector<std::vector<unsigned char>> smem;  // per block of the set
    std::vector<std::uint64_t> slots;              // 32 per warp of the set
    std::vector<unsigned> warp_size;
    std::vector<unsigned> live_b, at_b, live_w, at_w;  // open_barriers' counters
    ucontext_t sched;
    jmp_buf sched_jb;
    const std::function<void()>* body = nullptr;
    bool cooperative = false;
    Fiber* cur = nullptr;
    std::string error;
};

thread_local Run* g_run = nullptr;
thread_local ThreadView g_host_view{};
thread_local cudaError_t g_last = cudaSuccess;
thread_local std::string g_detail;

std::mutex g_mem_mutex;
std::map<void*, size_t> g_allocs;
size_t g_allocated = 0;
std::map<const void*, size_t> g_func_smem;
constexpr size_t kTotalMem = size_t(16) << 30;

cudaError_t fail(cudaError_t err, const std::string& detail) {
    g_last = err;
    g_detail = detail;
    return err;
}

struct FiberFault {
    std::string what;
};

void fiber_main() {
    Run* r = g_run;
    try {
        (*r->body)();
    } catch (const FiberFault& f) {
        if (r->error.empty()) r->error = f.what;
    } catch (const std::exception& e) {
        if (r->error.empty()) r->error = std::string("exception in a kernel: ") + e.what();
    } catch (...) {
        if (r->error.empty()) r->error = "unknown exception in a kernel";
    }
    r->cur->state = State::Done;
    _longjmp(r->sched_jb, 1);  // never returns: the context that started the fiber is stale
}

void wait_at(State s) {
    Run* r = g_run;
    if (!r || !r->cur) throw std::logic_error("sd_emu: a barrier outside a kernel");
    Fiber* f = r->cur;
    f->state = s;
    if (!_setjmp(f->jb)) _longjmp(r->sched_jb, 1);
}

std::uint64_t next_random(std::uint64_t& s) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

std::uint64_t& shuffle_state() {
    static thread_local std::uint64_t s = [] {
        const char* e = std::getenv("SD_EMU_SEED");
        std::uint64_t v = e ? std::strtoull(e, nullptr, 10) : 1;
        return v * 0x9E3779B97F4A7C15ull + 1;
    }();
    return s;
}

/// Opens every barrier at which all live threads of its scope wait. False when none opens.
bool open_barriers(Run& r, size_t n_blocks) {
    const size_t n_warps = r.warp_size.size();
    std::vector<unsigned>&live_b = r.live_b, &at_b = r.at_b, &live_w = r.live_w, &at_w = r.at_w;
    live_b.assign(n_blocks, 0);
    at_b.assign(n_blocks, 0);
    live_w.assign(n_warps, 0);
    at_w.assign(n_warps, 0);
    size_t live = 0, at_grid = 0;
    for (auto& f : r.fibers) {
        if (f->state == State::Done) continue;
        ++live;
        ++live_b[f->block];
        ++live_w[f->warp];
        at_b[f->block] += f->state == State::AtBlock;
        at_w[f->warp] += f->state == State::AtWarp;
        at_grid += f->state == State::AtGrid;
    }
    bool opened = false;
    const bool grid_open = live && at_grid == live;
    for (auto& f : r.fibers) {
        const bool go = (f->state == State::AtGrid && grid_open) ||
                        (f->state == State::AtBlock && at_b[f->block] == live_b[f->block]) ||
                        (f->state == State::AtWarp && at_w[f->warp] == live_w[f->warp]);
        if (go) {
            f->state = State::Runnable;
            opened = true;
        }
    }
    return opened;
}

std::string describe_waits(const Run& r) {
    size_t b = 0, w = 0, g = 0, d = 0;
    for (auto& f : r.fibers) {
        b += f->state == State::AtBlock;
        w += f->state == State::AtWarp;
        g += f->state == State::AtGrid;
        d += f->state == State::Done;
    }
    return std::to_string(b) + " at __syncthreads, " + std::to_string(w) + " at a warp barrier, " +
           std::to_string(g) + " at grid.sync(), " + std::to_string(d) + " returned";
}

/// Runs blocks [b0, b0 + nb) of the grid to completion as one set of fibers.
cudaError_t run_set(dim3 grid, dim3 block, size_t smem, bool cooperative, const std::function<void()>& body,
                    size_t b0, size_t nb) {
    const size_t per_block = size_t(block.x) * block.y * block.z;
    const size_t warps_per_block = (per_block + 31) / 32;
    Run r;
    r.body = &body;
    r.cooperative = cooperative;
    r.smem.assign(nb, std::vector<unsigned char>(smem ? smem : 1, (unsigned char)kGarbage));
    r.slots.assign(nb * warps_per_block * 32, 0);
    r.warp_size.assign(nb * warps_per_block, 32);
    for (size_t b = 0; b < nb; ++b)
        if (per_block % 32) r.warp_size[b * warps_per_block + warps_per_block - 1] = unsigned(per_block % 32);
    r.fibers.reserve(nb * per_block);
    for (size_t b = 0; b < nb; ++b) {
        const size_t gb = b0 + b;
        const dim3 bidx(unsigned(gb % grid.x), unsigned(gb / grid.x % grid.y), unsigned(gb / (size_t(grid.x) * grid.y)));
        for (size_t t = 0; t < per_block; ++t) {
            auto f = std::make_unique<Fiber>();
            f->view.tid = dim3(unsigned(t % block.x), unsigned(t / block.x % block.y),
                                     unsigned(t / (size_t(block.x) * block.y)));
            f->view.bid = bidx;
            f->view.bdim = block;
            f->view.gdim = grid;
            f->view.smem = r.smem[b].data();
            f->block = unsigned(b);
            f->warp = unsigned(b * warps_per_block + t / 32);
            f->lane = unsigned(t % 32);
            f->stack = static_cast<char*>(std::malloc(kStack));
            if (!f->stack) return fail(cudaErrorMemoryAllocation, "emulator: no memory for thread stacks");
            getcontext(&f->ctx);
            f->ctx.uc_stack.ss_sp = f->stack;
            f->ctx.uc_stack.ss_size = kStack;
            f->ctx.uc_link = nullptr;  // fibers end with a jump back, never by returning
            makecontext(&f->ctx, fiber_main, 0);
            r.fibers.push_back(std::move(f));
        }
    }
    Run* outer = g_run;
    g_run = &r;
    std::vector<size_t> order(r.fibers.size());
    std::uint64_t& rng = shuffle_state();
    cudaError_t result = cudaSuccess;
    for (;;) {
        std::iota(order.begin(), order.end(), size_t(0));
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[next_random(rng) % i]);
        for (size_t i : order) {
            Fiber* f = r.fibers[i].get();
            if (f->state != State::Runnable) continue;
            r.cur = f;
            if (!_setjmp(r.sched_jb)) {
                if (f->started) _longjmp(f->jb, 1);
                f->started = true;
                swapcontext(&r.sched, &f->ctx);
            }
            r.cur = nullptr;
            if (!r.error.empty()) break;
        }
        if (!r.error.empty()) {
            result = fail(cudaErrorLaunchFailure, "emulator: " + r.error);
            break;
        }
        bool all_done = true;
        for (auto& f : r.fibers) all_done = all_done && f->state == State::Done;
        if (all_done) break;
        if (!open_barriers(r, nb)) {
            result = fail(cudaErrorLaunchFailure, "emulator: deadlock, threads wait at barriers that cannot open (" +
                                                      describe_waits(r) + ")");
            break;
        }
    }
    g_run = outer;
    return result;
}

}  // namespace

ThreadView& view() { return g_run && g_run->cur ? g_run->cur->view : g_host_view; }

void sync_block() { wait_at(State::AtBlock); }
void sync_warp() { wait_at(State::AtWarp); }
void sync_grid() {
    if (g_run && !g_run->cooperative)
        throw FiberFault{"grid.sync() in a kernel that was not launched with cudaLaunchCooperativeKernel"};
    wait_at(State::AtGrid);
}
unsigned lane_id() { return g_run && g_run->cur ? g_run->cur->lane : 0; }

std::uint64_t warp_exchange(std::uint64_t mine, int src_lane) {
    Run* r = g_run;
    if (!r || !r->cur) throw std::logic_error("sd_emu: a warp shuffle outside a kernel");
    Fiber* f = r->cur;
    std::uint64_t* slots = &r->slots[size_t(f->warp) * 32];
    slots[f->lane] = mine;
    sync_warp();
    const std::uint64_t v = slots[src_lane & 31];
    sync_warp();
    return v;
}

size_t& max_dynamic_smem(const void* func) {
    std::lock_guard<std::mutex> lock(g_mem_mutex);
    return g_func_smem[func];
}

cudaError_t launch(const void* func, dim3 grid, dim3 block, size_t smem, bool cooperative,
                   const std::function<void()>& body) {
    const size_t per_block = size_t(block.x) * block.y * block.z;
    const size_t n_blocks = size_t(grid.x) * grid.y * grid.z;
    if (per_block == 0 || per_block > size_t(kMaxThreadsPerBlock) || block.z > 64 || n_blocks == 0 ||
        grid.y > 65535 || grid.z > 65535)
        return fail(cudaErrorInvalidConfiguration,
                    "emulator: invalid launch configuration (grid " + std::to_string(grid.x) + "x" +
                        std::to_string(grid.y) + "x" + std::to_string(grid.z) + ", block " + std::to_string(block.x) +
                        "x" + std::to_string(block.y) + "x" + std::to_string(block.z) + ")");
    const size_t limit = std::max(kSharedPerBlock, max_dynamic_smem(func));
    if (smem > limit)
        return fail(cudaErrorInvalidValue, "emulator: " + std::to_string(smem) +
                                               " bytes of dynamic shared memory, over the kernel's limit of " +
                                               std::to_string(limit));
    if (cooperative) return run_set(grid, block, smem, true, body, 0, n_blocks);
    for (size_t b = 0; b < n_blocks; ++b) {
        const cudaError_t err = run_set(grid, block, smem, false, body, b, 1);
        if (err != cudaSuccess) return err;
    }
    return cudaSuccess;
}

}  // namespace sd_emu

using sd_emu::fail;

unsigned __ballot_sync(unsigned, int pred) {
    const std::uint64_t mine = pred ? 1 : 0;
    sd_emu::Run* r = sd_emu::g_run;
    if (!r || !r->cur) throw std::logic_error("sd_emu: a warp vote outside a kernel");
    sd_emu::Fiber* f = r->cur;
    std::uint64_t* slots = &r->slots[size_t(f->warp) * 32];
    slots[f->lane] = mine;
    sd_emu::sync_warp();
    unsigned bits = 0;
    const unsigned n = r->warp_size[f->warp];
    for (unsigned l = 0; l < n; ++l) bits |= unsigned(slots[l] & 1u) << l;
    sd_emu::sync_warp();
    return bits;
}

const char* cudaGetErrorName(cudaError_t err) {
    switch (err) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
        case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
        case cudaErrorCooperativeLaunchTooLarge: return "cudaErrorCooperativeLaunchTooLarge";
        default: return "cudaErrorUnknown";
    }
}

const char* cudaGetErrorString(cudaError_t err) {
    if (err == cudaSuccess) return "no error";
    if (!sd_emu::g_detail.empty()) return sd_emu::g_detail.c_str();
    return cudaGetErrorName(err);
}

cudaError_t cudaGetLastError() {
    const cudaError_t e = sd_emu::g_last;
    sd_emu::g_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError() { return sd_emu::g_last; }

cudaError_t cudaGetDeviceCount(int* n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int* dev) {
    *dev = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) {
    return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "emulator: device " + std::to_string(dev) + " does not exist");
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int dev) {
    if (dev != 0) return cudaSetDevice(dev);
    std::memset(prop, 0, sizeof(*prop));
    std::strncpy(prop->name, "sparsedream CPU emulator of CUDA (tests only, not a GPU)", sizeof(prop->name) - 1);
    prop->multiProcessorCount = sd_emu::kSMs;
    prop->major = 9;
    prop->minor = 0;
    prop->sharedMemPerBlock = sd_emu::kSharedPerBlock;
    prop->sharedMemPerBlockOptin = sd_emu::kSharedOptin;
    prop->totalGlobalMem = sd_emu::kTotalMem;
    prop->maxThreadsPerBlock = sd_emu::kMaxThreadsPerBlock;
    prop->cooperativeLaunch = 1;
    prop->l2CacheSize = 1 << 20;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev) {
    cudaDeviceProp p;
    const cudaError_t e = cudaGetDeviceProperties(&p, dev);
    if (e != cudaSuccess) return e;
    switch (attr) {
        case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
        case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(p.sharedMemPerBlock); break;
        case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
        case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
        case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
        case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = int(p.sharedMemPerBlockOptin + 1024); break;
        case cudaDevAttrCooperativeLaunch: *value = 1; break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(p.sharedMemPerBlockOptin); break;
        case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
        default: return fail(cudaErrorInvalidValue, "emulator: device attribute not emulated");
    }
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
    *v = 0;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
    *v = 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
// Work runs when it is issued, so every stream is the same: a tag that counts the streams
// alive (a test sees a leak as a count that does not return to zero).
struct sd_emu_stream {};
namespace sd_emu {
int g_streams = 0;
int streams_alive() { return g_streams; }
}  // namespace sd_emu
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
    *s = new sd_emu_stream;
    ++sd_emu::g_streams;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s) return fail(cudaErrorInvalidValue, "emulator: cudaStreamDestroy of the null stream");
    delete s;
    --sd_emu::g_streams;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
    *p = nullptr;
    if (bytes == 0) return cudaSuccess;
    std::lock_guard<std::mutex> lock(sd_emu::g_mem_mutex);
    if (sd_emu::g_allocated + bytes > sd_emu::kTotalMem)
        return fail(cudaErrorMemoryAllocation, "emulator: out of (emulated) device memory");
    void* q = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!q) return fail(cudaErrorMemoryAllocation, "emulator: out of host memory");
    std::memset(q, sd_emu::kGarbage, bytes);
    sd_emu::g_allocs[q] = bytes;
    sd_emu::g_allocated += bytes;
    *p = q;
    return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> lock(sd_emu::g_mem_mutex);
    auto it = sd_emu::g_allocs.find(p);
    if (it == sd_emu::g_allocs.end()) return fail(cudaErrorInvalidValue, "emulator: cudaFree of a pointer cudaMalloc did not return");
    sd_emu::g_allocated -= it->second;
    sd_emu::g_allocs.erase(it);
    std::free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
    if (bytes && (!dst || !src)) return fail(cudaErrorInvalidValue, "emulator: cudaMemcpy with a null pointer");
    if (bytes) std::memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
    return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
    if (bytes && !p) return fail(cudaErrorInvalidValue, "emulator: cudaMemset of a null pointer");
    if (bytes) std::memset(p, value, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    std::lock_guard<std::mutex> lock(sd_emu::g_mem_mutex);
    *total_bytes = sd_emu::kTotalMem;
    *free_bytes = sd_emu::kTotalMem - sd_emu::g_allocated;
    return cudaSuccess;
}
