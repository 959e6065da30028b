// tapeflow::cuda: the public face of kernels/cuda's device queries; and check_later, whose
// conditions on a device wait here, per thread, for the next read of device values.
#include "tapeflow/device.hpp"

#include <map>
#include <string>
#include <utility>

#include "internal.hpp"

namespace tapeflow {

namespace {

struct Deferred {
  Tensor ok;
  void (*raise)(const std::string&);
};
// check_later's conditions still on a device, by message (per thread: no hidden shared state)
thread_local std::map<std::string, Deferred> t_deferred;
constexpr std::size_t kMaxDeferred = 64;

bool read_ok(const Tensor& ok) {
  detail::NoRecord no_record;
  return ok.astype(DType::Bool).to(Device::cpu()).item<bool>();
}

}  // namespace

void check_later(const Tensor& ok, std::string message, void (*raise)(const std::string& message)) {
  if (!ok.defined() || ok.rank() != 0) {
    throw ValueError(fmt::format("check_later: needs a 0-d condition, got {} (check: {})",
                                 ok.defined() ? shape_str(ok.shape()) : std::string("an undefined tensor"),
                                 message));
  }
  if (raise == nullptr) throw ValueError(fmt::format("check_later: no error to raise (check: {})", message));
  if (ok.device().is_cpu()) {
    if (!read_ok(ok)) raise(message);
    return;
  }
  detail::NoRecord no_record;  // a check is not differentiated
  const Tensor cond = ok.astype(DType::Bool);
  auto it = t_deferred.find(message);
  if (it != t_deferred.end() && it->second.ok.device() == cond.device()) {
    it->second.ok = logical_and(it->second.ok, cond);
    it->second.raise = raise;
    return;
  }
  if (it != t_deferred.end() || t_deferred.size() >= kMaxDeferred) detail::run_deferred_checks();
  t_deferred[std::move(message)] = Deferred{cond, raise};
}

namespace detail {

void run_deferred_checks() {
  if (t_deferred.empty()) return;
  const std::map<std::string, Deferred> pending = std::exchange(t_deferred, {});
  for (const auto& [message, check] : pending) {
    if (!read_ok(check.ok)) check.raise(message);
  }
}

}  // namespace detail

}  // namespace tapeflow

namespace tapeflow::cuda {

#if defined(TAPEFLOW_HAVE_CUDA)
int device_count() { return kernels::cuda::device_count(); }
std::string status() { return kernels::cuda::device_status(); }
void synchronize(Device device) {
  detail::use_device(device, "synchronize");
  try {
    kernels::cuda::synchronize();
  } catch (const kernels::cuda::CudaError&) {
    detail::rethrow_device_error("synchronize");
  }
  detail::run_deferred_checks();
}
std::uint64_t host_waits() { return kernels::cuda::host_waits(); }
void set_allow_tf32(bool allow) { kernels::cuda::set_allow_tf32(allow); }
bool allow_tf32() { return kernels::cuda::allow_tf32(); }
#else
int device_count() { return 0; }
std::string status() { return "no CUDA device: this build has no CUDA, TAPEFLOW_CUDA=OFF"; }
void synchronize(Device device) { detail::use_device(device, "synchronize"); }
std::uint64_t host_waits() { return 0; }
void set_allow_tf32(bool) {}
bool allow_tf32() { return false; }
#endif

}  // namespace tapeflow::cuda
