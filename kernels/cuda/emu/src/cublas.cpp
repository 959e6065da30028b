// TAPEFLOW_CUDA=EMU: the cuBLAS entry points kernels/cuda/src/matmul.cu resolves with dlsym,
// computed on the host in the emulated device memory, queued on the handle's stream like the
// real ones. Arguments are checked as cuBLAS documents them (sizes, leading dimensions, types,
// compute types) and every matrix must lie inside one live allocation of the handle's device,
// so a wrong transpose flag, leading dimension or batch stride fails here instead of reading
// a neighbour's memory. TF32 rounds both inputs to 10 mantissa bits, as tensor cores do.
#include <cblas.h>
#include <cublas_v2.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "emu_internal.hpp"

struct cublasContext {
  int device;
  cudaStream_t stream;
  cublasMath_t math;
};

namespace {

using tapeflow_emu::report;

float to_tf32(float x) {
  if (!std::isfinite(x)) return x;
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0xfffu + ((u >> 13) & 1u);  // round to nearest even at bit 13
  u &= ~0x1fffu;
  std::memcpy(&x, &u, 4);
  return x;
}

struct Operand {
  const char* name;
  const void* ptr;
  long long rows, cols;  // as stored (column-major), before op
  long long ld, stride;
};

// Bytes from the first to one past the last element an operand's batches touch.
long long extent(const Operand& o, int batches, std::size_t elem) {
  if (o.rows == 0 || o.cols == 0 || batches == 0) return 0;
  return ((o.rows - 1) + (o.cols - 1) * o.ld + static_cast<long long>(batches - 1) * o.stride + 1) *
         static_cast<long long>(elem);
}

// C = alpha op(A) op(B) + beta C per batch, column-major as cuBLAS has it, by OpenBLAS's
// column-major gemm with the same flags and leading dimensions (a translation of the call, not
// of matmul.cu's row-major mapping, which is what this checks). Float32 accumulates in float32,
// as CUBLAS_COMPUTE_32F does. With TF32 both inputs are rounded first, into copies.
void blas_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* a, int lda,
               const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
              tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void blas_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const double* a,
               int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
              tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

std::vector<float> tf32_copy(const float* p, long long n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = to_tf32(p[i]);
  return v;
}

template <class T>
void gemm_host(bool tf32, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha, const T* a,
               int lda, long long sa, long long a_elems, const T* b, int ldb, long long sb, long long b_elems, T beta,
               T* c, int ldc, long long sc, int batches) {
  std::vector<float> a_tf32, b_tf32;
  if constexpr (std::is_same_v<T, float>) {
    if (tf32) {
      a_tf32 = tf32_copy(a, a_elems);
      b_tf32 = tf32_copy(b, b_elems);
      a = a_tf32.data();
      b = b_tf32.data();
    }
  }
  for (int z = 0; z < batches; ++z) {
    // k == 0: C = beta C (alpha times an empty sum), which BLAS also does when k is 0
    blas_gemm(ta, tb, m, n, k, alpha, a + z * sa, lda, b + z * sb, ldb, beta, c + z * sc, ldc);
  }
}

cublasStatus_t gemm(const char* call, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, const void* alpha, const void* a, cudaDataType at, int lda, long long sa, const void* b,
                    cudaDataType bt, int ldb, long long sb, const void* beta, void* c, cudaDataType ct, int ldc,
                    long long sc, int batches, cublasComputeType_t compute) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const auto invalid = [&](const std::string& why) {
    report(std::string(call) + ": " + why);
    return CUBLAS_STATUS_INVALID_VALUE;
  };
  const bool ta_ok = ta == CUBLAS_OP_N || ta == CUBLAS_OP_T, tb_ok = tb == CUBLAS_OP_N || tb == CUBLAS_OP_T;
  if (!ta_ok || !tb_ok) return invalid("transpose flags other than N and T");
  if (m < 0 || n < 0 || k < 0 || batches < 0) return invalid("a negative size");
  const int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  if (lda < std::max(1, a_rows)) return invalid("lda " + std::to_string(lda) + " < " + std::to_string(a_rows));
  if (ldb < std::max(1, b_rows)) return invalid("ldb " + std::to_string(ldb) + " < " + std::to_string(b_rows));
  if (ldc < std::max(1, m)) return invalid("ldc " + std::to_string(ldc) + " < " + std::to_string(m));
  if (at != bt || at != ct || (at != CUDA_R_32F && at != CUDA_R_64F)) {
    report(std::string(call) + ": only float32 or float64 for A, B and C alike");
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  const bool f32 = at == CUDA_R_32F;
  const bool compute_ok = f32 ? (compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_FAST_TF32)
                              : compute == CUBLAS_COMPUTE_64F;
  if (!compute_ok) {
    report(std::string(call) + ": compute type does not fit the data type");
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (m == 0 || n == 0 || batches == 0) return CUBLAS_STATUS_SUCCESS;
  const std::size_t elem = f32 ? 4 : 8;
  const Operand ops[3] = {{"A", a, a_rows, ta == CUBLAS_OP_N ? k : m, lda, sa},
                          {"B", b, b_rows, tb == CUBLAS_OP_N ? n : k, ldb, sb},
                          {"C", c, m, n, ldc, sc}};
  for (const Operand& o : ops) {
    if (k == 0 && o.name[0] != 'C') continue;
    const long long bytes = extent(o, batches, elem);
    if (tapeflow_emu::device_of(o.ptr, static_cast<std::size_t>(bytes)) != h->device) {
      report(std::string(call) + ": " + o.name + " (" + std::to_string(o.rows) + " x " + std::to_string(o.cols) +
             ", ld " + std::to_string(o.ld) + ", batch stride " + std::to_string(o.stride) + ", " +
             std::to_string(batches) + " batches: " + std::to_string(bytes) +
             " bytes) is not inside one live allocation of device " + std::to_string(h->device));
      tapeflow_emu::set_sticky(cudaErrorIllegalAddress);
      return CUBLAS_STATUS_EXECUTION_FAILED;
    }
  }
  const long long a_elems = extent(ops[0], batches, 1), b_elems = extent(ops[1], batches, 1);
  const bool tf32 = f32 && (compute == CUBLAS_COMPUTE_32F_FAST_TF32 ||
                            (compute == CUBLAS_COMPUTE_32F && (h->math & CUBLAS_TF32_TENSOR_OP_MATH) != 0));
  cudaError_t err;
  if (f32) {
    // host pointer mode: the scalars are read now
    const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
    err = tapeflow_emu::enqueue(h->stream, [=] {
      tapeflow_emu::profiled(call, 0, [&] {
        gemm_host<float>(tf32, ta, tb, m, n, k, al, static_cast<const float*>(a), lda, sa, a_elems,
                         static_cast<const float*>(b), ldb, sb, b_elems, be, static_cast<float*>(c), ldc, sc, batches);
      });
    }, {a, b, c});
  } else {
    const double al = *static_cast<const double*>(alpha), be = *static_cast<const double*>(beta);
    err = tapeflow_emu::enqueue(h->stream, [=] {
      tapeflow_emu::profiled(call, 0, [&] {
        gemm_host<double>(false, ta, tb, m, n, k, al, static_cast<const double*>(a), lda, sa, a_elems,
                          static_cast<const double*>(b), ldb, sb, b_elems, be, static_cast<double*>(c), ldc, sc,
                          batches);
      });
    }, {a, b, c});
  }
  return err == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
  *handle = new cublasContext{tapeflow_emu::current_device(), nullptr, CUBLAS_DEFAULT_MATH};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    default: return "CUBLAS_STATUS_UNKNOWN_ERROR";
  }
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  (void)algo;
  return gemm("cublasGemmEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C,
              Ctype, ldc, 0, 1, computeType);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                          int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
                                          long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
                                          long long strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo) {
  (void)algo;
  return gemm("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype,
              ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType);
}

}  // extern "C"
