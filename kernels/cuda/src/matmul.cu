// matmul: cuBLAS for float32 / float64 (strided-batched when every operand's batch offsets
// are an arithmetic progression, else one call per batch entry), a plain kernel for
// integers. Row-major out = A @ B is computed as column-major out^T = B^T A^T.
//
// cuBLAS is loaded with dlopen on the first CUDA matmul, not linked: loading libcublas and
// libcublasLt costs every process about 150 MiB of resident memory, CPU-only ones included.
#include <cublas_v2.h>
#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "common.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "unknown cuBLAS status";
  }
}

#define TAPEFLOW_CUBLAS_CHECK(call)                                                                            \
  do {                                                                                                         \
    const cublasStatus_t tapeflow_cublas_status_ = (call);                                                     \
    if (tapeflow_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                                                    \
      throw CudaError(std::string(#call) + " failed: " + cublas_status_name(tapeflow_cublas_status_) + " at " + \
                          __FILE__ + ":" + std::to_string(__LINE__),                                           \
                      static_cast<int>(tapeflow_cublas_status_));                                              \
    }                                                                                                          \
  } while (0)

// The C entry points of cublasGemmEx and cublasGemmStridedBatchedEx (cublas_api.h also has
// C++ overloads of these names, taking cudaDataType as the compute type).
using GemmFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                  const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                  cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
using GemmStridedBatchedFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                                const void*, const void*, cudaDataType, int, long long, const void*,
                                                cudaDataType, int, long long, const void*, void*, cudaDataType, int,
                                                long long, int, cublasComputeType_t, cublasGemmAlgo_t);
// The header's declarations have exactly these types (unevaluated: nothing is linked).
static_assert(std::is_same_v<decltype(static_cast<GemmFn>(&cublasGemmEx)), GemmFn>);
static_assert(std::is_same_v<decltype(static_cast<GemmStridedBatchedFn>(&cublasGemmStridedBatchedEx)),
                             GemmStridedBatchedFn>);

// The cuBLAS entry points used here, resolved once from the shared library.
struct Cublas {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  GemmFn gemm = nullptr;
  GemmStridedBatchedFn gemm_strided_batched = nullptr;
};

template <class F>
void resolve(void* lib, F& f, const char* name, const std::string& path) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (f == nullptr) throw CudaError("matmul: " + path + " has no " + name, 0);
}

const Cublas& cublas() {
#ifdef TAPEFLOW_CUBLAS_LINKED  // TAPEFLOW_CUDA=EMU: the emulator's cuBLAS, linked in (kernels/cuda/emu)
  static const Cublas api = {&cublasCreate_v2, &cublasSetStream_v2, &cublasSetMathMode, &cublasGemmEx,
                             &cublasGemmStridedBatchedEx};
  return api;
#else
  static const Cublas* api = [] {
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* lib = nullptr;
    std::string path;
    for (const std::string& candidate : {name, "/usr/local/cuda/lib64/" + name, std::string("libcublas.so")}) {
      lib = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib != nullptr) {
        path = candidate;
        break;
      }
    }
    if (lib == nullptr) {
      const char* why = dlerror();
      throw CudaError("matmul: cannot load " + name + ": " + (why != nullptr ? why : "not found"), 0);
    }
    auto* c = new Cublas();
    resolve(lib, c->create, "cublasCreate_v2", path);
    resolve(lib, c->set_stream, "cublasSetStream_v2", path);
    resolve(lib, c->set_math_mode, "cublasSetMathMode", path);
    resolve(lib, c->gemm, "cublasGemmEx", path);
    resolve(lib, c->gemm_strided_batched, "cublasGemmStridedBatchedEx", path);
    return c;
  }();
  return *api;
#endif
}

// One handle per device, bound to the device's stream; created on first use, never destroyed
// (tensors in static storage may outlive any other static).
cublasHandle_t handle() {
  static std::mutex mutex;
  static auto* handles = new std::vector<cublasHandle_t>();
  const int device = current_device();
  std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<std::size_t>(device) >= handles->size()) handles->resize(static_cast<std::size_t>(device) + 1);
  cublasHandle_t& h = (*handles)[static_cast<std::size_t>(device)];
  if (h == nullptr) {
    cublasHandle_t made = nullptr;
    TAPEFLOW_CUBLAS_CHECK(cublas().create(&made));  // on the current device
    TAPEFLOW_CUBLAS_CHECK(cublas().set_stream(made, detail::current_stream()));
    h = made;
  }
  return h;
}

std::atomic<bool> g_allow_tf32{false};

constexpr i64 kIntMax = 0x7fffffff;

// How cuBLAS reads one row-major matrix of rows x cols with strides (s_row, s_col): as
// stored (row-major: cuBLAS sees the transpose, op N) or transposed (op T), with its leading
// dimension; `ok` is false when neither fits (a zero, negative or overlapping stride, or a
// leading dimension past int).
struct BlasView {
  bool ok = false;
  bool transposed = false;  // the memory holds the matrix column-major
  i64 ld = 0;
};
BlasView blas_view(i64 rows, i64 cols, i64 s_row, i64 s_col) {
  const i64 r = std::max<i64>(rows, 1), c = std::max<i64>(cols, 1);
  // row-major: consecutive columns adjacent
  if (s_col == 1 || cols == 1) {
    const i64 ld = rows == 1 ? c : s_row;
    if (ld >= c && ld <= kIntMax) return {true, false, ld};
  }
  // column-major: consecutive rows adjacent
  if (s_row == 1 || rows == 1) {
    const i64 ld = cols == 1 ? r : s_col;
    if (ld >= r && ld <= kIntMax) return {true, true, ld};
  }
  return {};
}

// Offsets (in elements) of every batch entry of a layout's batch axes (rank - 2 of them).
std::vector<i64> batch_offsets(const Layout& l) {
  const int nb = l.rank - 2;
  i64 count = 1;
  for (int d = 0; d < nb; ++d) count *= l.shape[d];
  std::vector<i64> offs(static_cast<std::size_t>(count));
  for (i64 b = 0; b < count; ++b) {
    i64 rem = b, off = 0;
    for (int d = nb - 1; d >= 0; --d) {
      off += (rem % l.shape[d]) * l.strides[d];
      rem /= l.shape[d];
    }
    offs[static_cast<std::size_t>(b)] = off;
  }
  return offs;
}

// True when the offsets are an arithmetic progression from 0 with a step >= 0 (stored in step).
bool uniform_step(const std::vector<i64>& offs, i64& step) {
  step = offs.size() > 1 ? offs[1] - offs[0] : 0;
  if (offs.empty() || offs[0] != 0 || step < 0) return false;
  for (std::size_t i = 1; i < offs.size(); ++i)
    if (offs[i] - offs[i - 1] != step) return false;
  return true;
}

// A contiguous copy of an operand (every batch entry, broadcast ones repeated) in cached
// workspace, handed back when this goes out of scope: the stream orders any later user of
// the memory after the gemm queued before.
template <class T>
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() {
    if (ptr_ != nullptr) deallocate(device_, ptr_, capacity_);
  }
  // Copies src (layout l) and makes l the copy's contiguous layout.
  const T* make_contiguous(const T* src, Layout& l) {
    device_ = current_device();
    const Layout c = contiguous_layout(l.rank, l.shape);
    ptr_ = allocate(device_, static_cast<std::size_t>(l.size()) * sizeof(T), capacity_);
    copy<T, T>(static_cast<T*>(ptr_), c, src, l);
    l = c;
    return static_cast<const T*>(ptr_);
  }

 private:
  int device_ = 0;
  void* ptr_ = nullptr;
  std::size_t capacity_ = 0;
};

// Integer matmul (and any size cuBLAS cannot take): 16 x 16 output tiles per block, the
// operands staged through shared memory a 16-wide slab of k at a time; grid-stride over
// tiles and batch entries. Accumulates in T, as the naive kernel does for integers (wrapping
// around).
constexpr int kTile = 16;
template <class T>
__global__ void matmul_tiled(T* out, const T* a, const T* b, detail::Indexer<2> batch_ix, i64 batches, i64 m,
                             i64 n, i64 k, i64 as_m, i64 as_k, i64 bs_k, i64 bs_n) {
  __shared__ T a_tile[kTile][kTile + 1];
  __shared__ T b_tile[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const i64 tiles_m = (m + kTile - 1) / kTile, tiles_n = (n + kTile - 1) / kTile;
  for (i64 z = blockIdx.z; z < batches; z += gridDim.z) {
    i64 off[2];
    batch_ix.offsets(z, off);
    const T* az = a + off[0];
    const T* bz = b + off[1];
    for (i64 tm = blockIdx.y; tm < tiles_m; tm += gridDim.y) {
      for (i64 tn = blockIdx.x; tn < tiles_n; tn += gridDim.x) {
        const i64 i = tm * kTile + ty, j = tn * kTile + tx;
        T acc = 0;
        for (i64 p0 = 0; p0 < k; p0 += kTile) {
          a_tile[ty][tx] = i < m && p0 + tx < k ? az[i * as_m + (p0 + tx) * as_k] : T(0);
          b_tile[ty][tx] = p0 + ty < k && j < n ? bz[(p0 + ty) * bs_k + j * bs_n] : T(0);
          __syncthreads();
#pragma unroll
          for (int q = 0; q < kTile; ++q) acc = wrap_add(acc, wrap_mul(a_tile[ty][q], b_tile[q][tx]));
          __syncthreads();
        }
        if (i < m && j < n) out[(z * m + i) * n + j] = acc;
      }
    }
  }
}

template <class T>
void matmul_kernel(T* out, const T* a, const Layout& a_l, const T* b, const Layout& b_l, i64 batches, i64 m, i64 n,
                   i64 k) {
  const int r = a_l.rank;
  const i64* const strides[] = {a_l.strides, b_l.strides};
  const detail::Indexer<2> batch_ix = detail::make_indexer<2>(r - 2, a_l.shape, strides);
  const dim3 block(kTile, kTile);
  const dim3 grid(static_cast<unsigned>(std::min((n + kTile - 1) / kTile, detail::kMaxBlocks)),
                  static_cast<unsigned>(std::min((m + kTile - 1) / kTile, detail::kMaxBlocks)),
                  static_cast<unsigned>(std::min(batches, detail::kMaxBlocks)));
  matmul_tiled<T><<<grid, block, 0, detail::current_stream()>>>(out, a, b, batch_ix, batches, m, n, k,
                                                                 a_l.strides[r - 2], a_l.strides[r - 1],
                                                                 b_l.strides[r - 2], b_l.strides[r - 1]);
  TAPEFLOW_CUDA_LAUNCHED();
}

// Above this many batch entries whose offsets are no arithmetic progression (a broadcast
// batch axis that is not the only one), the operand is copied contiguous and one
// strided-batched call replaces a call per entry.
constexpr i64 kMaxGemmLoop = 16;

template <class T>
void gemm(T* out, const T* a, const Layout& a_l, const T* b, const Layout& b_l, i64 batches, i64 m, i64 n, i64 k) {
  const int r = a_l.rank;
  Layout al = a_l, bl = b_l;
  Workspace<T> a_ws, b_ws;
  BlasView av = blas_view(m, k, al.strides[r - 2], al.strides[r - 1]);
  if (!av.ok) {
    a = a_ws.make_contiguous(a, al);
    av = blas_view(m, k, al.strides[r - 2], al.strides[r - 1]);
  }
  BlasView bv = blas_view(k, n, bl.strides[r - 2], bl.strides[r - 1]);
  if (!bv.ok) {
    b = b_ws.make_contiguous(b, bl);
    bv = blas_view(k, n, bl.strides[r - 2], bl.strides[r - 1]);
  }
  std::vector<i64> a_offs = batch_offsets(al), b_offs = batch_offsets(bl);
  i64 a_step = 0, b_step = 0;
  bool strided = uniform_step(a_offs, a_step) && uniform_step(b_offs, b_step);
  if (!strided && batches > kMaxGemmLoop) {
    if (!uniform_step(a_offs, a_step)) {
      a = a_ws.make_contiguous(a, al);  // a was BLAS-able, so no workspace is held yet
      a_offs = batch_offsets(al);
      av = blas_view(m, k, al.strides[r - 2], al.strides[r - 1]);
    }
    if (!uniform_step(b_offs, b_step)) {
      b = b_ws.make_contiguous(b, bl);
      b_offs = batch_offsets(bl);
      bv = blas_view(k, n, bl.strides[r - 2], bl.strides[r - 1]);
    }
    strided = uniform_step(a_offs, a_step) && uniform_step(b_offs, b_step);
  }

  const cublasHandle_t h = handle();
  const bool tf32 = std::is_same_v<T, float> && g_allow_tf32.load();
  TAPEFLOW_CUBLAS_CHECK(cublas().set_math_mode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  const cudaDataType_t type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute = std::is_same_v<T, float>
                                          ? (tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F)
                                          : CUBLAS_COMPUTE_64F;
  const T one = 1, zero = 0;
  // column-major: out^T (n x m, ld n) = op(B memory) (n x k) * op(A memory) (k x m)
  const cublasOperation_t op_b = bv.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = av.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
  const int ldb = static_cast<int>(bv.ld), lda = static_cast<int>(av.ld), ldc = static_cast<int>(n);
  if (strided) {
    for (i64 first = 0; first < batches; first += kIntMax) {  // batchCount is an int
      const int count = static_cast<int>(std::min(batches - first, kIntMax));
      TAPEFLOW_CUBLAS_CHECK(cublas().gemm_strided_batched(h, op_b, op_a, M, N, K, &one, b + first * b_step, type, ldb,
                                                       b_step, a + first * a_step, type, lda, a_step, &zero,
                                                       out + first * m * n, type, ldc, m * n, count, compute,
                                                       CUBLAS_GEMM_DEFAULT));
    }
    return;
  }
  for (i64 i = 0; i < batches; ++i) {
    const auto e = static_cast<std::size_t>(i);
    TAPEFLOW_CUBLAS_CHECK(cublas().gemm(h, op_b, op_a, M, N, K, &one, b + b_offs[e], type, ldb, a + a_offs[e], type,
                                       lda, &zero, out + i * m * n, type, ldc, compute, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

template <class T>
void matmul(T* out, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  const int r = a_l.rank;
  const i64 m = a_l.shape[r - 2], k = a_l.shape[r - 1], n = b_l.shape[r - 1];
  i64 batches = 1;
  for (int d = 0; d < r - 2; ++d) batches *= a_l.shape[d];
  if (batches == 0 || m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: zeros (cuBLAS is not asked)
    const i64 shape[3] = {batches, m, n};
    fill<T>(out, contiguous_layout(3, shape), T(0));
    return;
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (m <= kIntMax && n <= kIntMax && k <= kIntMax) {
      gemm<T>(out, a, a_l, b, b_l, batches, m, n, k);
      return;
    }
  }
  matmul_kernel<T>(out, a, a_l, b, b_l, batches, m, n, k);
}

template void matmul<std::int32_t>(std::int32_t*, const std::int32_t*, const Layout&, const std::int32_t*,
                                   const Layout&);
template void matmul<std::int64_t>(std::int64_t*, const std::int64_t*, const Layout&, const std::int64_t*,
                                   const Layout&);
template void matmul<float>(float*, const float*, const Layout&, const float*, const Layout&);
template void matmul<double>(double*, const double*, const Layout&, const double*, const Layout&);

}  // namespace tapeflow::kernels::cuda
