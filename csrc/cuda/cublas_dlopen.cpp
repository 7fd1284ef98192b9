// cublas_api() of the real CUDA module: dlopen of the first candidate that has the symbols.
#include <dlfcn.h>

#include <mutex>

#include "cublas_api.hpp"

namespace sd {
namespace cuda {

const CublasApi& cublas_api(const std::vector<std::string>& candidates) {
    static CublasApi api;
    static std::once_flag once;
    std::call_once(once, [&] {
        std::string tried;
        for (const std::string& name : candidates) {
            // RTLD_LOCAL: its symbols are not made global for later loads; a library of the
            // same soname that CuPy or PyTorch already loaded is that very instance
            void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!lib) {
                tried += (tried.empty() ? "" : "; ") + name + ": not loadable";
                continue;
            }
            CublasApi a;
            a.create = reinterpret_cast<decltype(a.create)>(dlsym(lib, "cublasCreate_v2"));
            a.set_stream = reinterpret_cast<decltype(a.set_stream)>(dlsym(lib, "cublasSetStream_v2"));
            a.set_math_mode = reinterpret_cast<decltype(a.set_math_mode)>(dlsym(lib, "cublasSetMathMode"));
            a.sgemm = reinterpret_cast<decltype(a.sgemm)>(dlsym(lib, "cublasSgemm_v2"));
            a.dgemm = reinterpret_cast<decltype(a.dgemm)>(dlsym(lib, "cublasDgemm_v2"));
            if (!a.ok()) {
                tried += (tried.empty() ? "" : "; ") + name + ": lacks some of the entry points used";
                dlclose(lib);
                continue;
            }
            a.where = name;  // kept loaded for the life of the process
            api = a;
            return;
        }
        api.where = "no cuBLAS found (" + (tried.empty() ? std::string("no candidates") : tried) + ")";
    });
    return api;
}

}  // namespace cuda
}  // namespace sd
