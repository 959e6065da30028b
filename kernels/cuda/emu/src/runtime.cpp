// TAPEFLOW_CUDA=EMU: the part of the CUDA runtime API that tapeflow calls, for machines
// without a GPU, and the executor of the kernels that tapeflow_cuda_emu.h launches.
//
// - Devices: TAPEFLOW_CUDA_EMU_DEVICES of them (default 2; 0: cudaGetDeviceCount fails like
//   a machine without a driver), sm_90, 16 GiB each.
// - Device memory: a reserved address range; every allocation gets pages of its own, ends
//   within 255 bytes of a guard page (it starts 256-byte aligned, as cudaMalloc's do) and is
//   never handed out again once freed, and only the queued work that was given a pointer
//   into it can read or write it: the host cannot (TAPEFLOW_CUDA_EMU_PROTECT=0 turns that
//   off). A fault there names the allocation and the kernel.
// - Streams: work is queued and runs only when the host waits (cudaStreamSynchronize,
//   cudaDeviceSynchronize, cudaFree, cudaMemcpy, cudaStreamDestroy), so a missing wait shows.
// - Kernels: every block runs its threads as fibers on the waiting host thread, switching at
//   __syncthreads() and shuffles; a barrier or shuffle that not every thread reaches is a
//   launch failure that names the kernel, instead of a hang.
// - Order: blocks run in index order, a block warp by warp (each as far as it can go), lanes
//   in index order between switches; all three reversed with TAPEFLOW_CUDA_EMU_ORDER=reverse
//   (a kernel whose result depends on the order, a missing __syncthreads() or a race between
//   blocks, gives other results, where on a GPU it gives different ones from run to run).
//   TAPEFLOW_CUDA_EMU_MAX_BLOCKS=N caps grid-stride launches at N blocks. Built with
//   TAPEFLOW_TSAN, ThreadSanitizer reports every data race between CUDA threads (below).
// - Shared memory: the block's own, on the heap, 0xff bytes at its start.
// - Errors: the last error per thread (cudaGetLastError), launch-configuration limits,
//   pointers that are not the launching device's memory, and sticky errors after a fault.
#include <cuda_runtime_api.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "emu_internal.hpp"
#include "tapeflow_cuda_emu.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define TAPEFLOW_EMU_ASAN 1
#else
#define TAPEFLOW_EMU_ASAN 0
#endif

// TAPEFLOW_TSAN (kernels/cuda/emu/CMakeLists.txt): the kernels are compiled with
// ThreadSanitizer and this file without it (the scheduler's own bookkeeping is no CUDA
// memory), and every CUDA thread of a grid runs as a ThreadSanitizer fiber no other thread of
// the grid used (fibers, each with its own stack, are pooled and reused by later grids, which
// are ordered after this one anyway). The switches between fibers carry no ordering; what
// orders CUDA threads is said explicitly, as CUDA defines it:
// - the host's work before a launch happens before every thread of the grid, and every thread
//   happens before the host's work after the grid;
// - __syncthreads(): every thread of the block before it happens before every thread after it;
// - a shuffle: the same within the warp;
// - atomics are atomics (the kernels' atomicAdd compiles to ThreadSanitizer's atomic calls).
// Nothing orders one block of a grid after another, so two blocks touching the same memory
// without atomics, or two threads of a block between barriers, is a reported data race.
#if defined(TAPEFLOW_EMU_TSAN)
#include <sanitizer/tsan_interface.h>
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#define TAPEFLOW_EMU_TSAN_ON 1
#else
#define TAPEFLOW_EMU_TSAN_ON 0
#endif

namespace tapeflow_emu {

thread_local ThreadCtx* t_thread = nullptr;

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kArenaBytes = std::size_t(1) << 38;  // address space only (256 GiB)
constexpr std::size_t kDeviceBytes = std::size_t(16) << 30;
constexpr int kMaxThreadsPerBlock = 1024;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}
int device_total() {
  static const int n = std::max(0, env_int("TAPEFLOW_CUDA_EMU_DEVICES", 2));
  return n;
}
bool reverse_order() {
  static const bool on = [] {
    const char* v = std::getenv("TAPEFLOW_CUDA_EMU_ORDER");
    return v != nullptr && std::strcmp(v, "reverse") == 0;
  }();
  return on;
}
bool protect_enabled() {
  static const bool on = env_int("TAPEFLOW_CUDA_EMU_PROTECT", 1) != 0;
  return on;
}

// The emulator's state lives on the heap and is never destroyed: CUDA calls made while the process
// exits (a caching allocator's destructor freeing its blocks) still find it, and leak checkers
// still reach it through these references.
template <class T>
T& immortal() {
  return *new T();
}

// TAPEFLOW_CUDA_EMU_PROFILE=1: at exit, per kernel, the launches, CUDA threads and host time
// the emulator spent on it, most time first, on stderr. Host time of emulated work is no GPU
// time, but its shares show where a job launches many threads or many launches.
struct KernelStats {
  unsigned long long launches = 0, threads = 0;
  double seconds = 0;
};
std::mutex g_profile_lock;
auto& g_profile = immortal<std::map<std::string, KernelStats>>();  // read at exit
bool profile_enabled() {
  static const bool on = env_int("TAPEFLOW_CUDA_EMU_PROFILE", 0) != 0;
  return on;
}
void print_profile() {
  std::lock_guard<std::mutex> lock(g_profile_lock);
  std::vector<std::pair<std::string, KernelStats>> rows(g_profile.begin(), g_profile.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (const auto& r : rows) total += r.second.seconds;
  std::fprintf(stderr, "tapeflow CUDA emulator profile: %.3f s in kernels\n%8s %6s %10s %14s  %s\n", total, "seconds",
               "share", "launches", "CUDA threads", "kernel");
  for (const auto& [name, k] : rows)
    std::fprintf(stderr, "%8.3f %5.1f%% %10llu %14llu  %s\n", k.seconds, total > 0 ? 100 * k.seconds / total : 0.0,
                 k.launches, k.threads, name.c_str());
}

// ---------------------------------------------------------------- errors

thread_local cudaError_t t_last = cudaSuccess;
std::atomic<int> g_sticky{cudaSuccess};

cudaError_t fail(cudaError_t e) {
  if (e != cudaSuccess) t_last = e;
  return e;
}
// Every call starts with this: after a fault, every call returns it (a dead context).
#define TAPEFLOW_EMU_STICKY()                                                              \
  do {                                                                                     \
    if (const int s_ = g_sticky.load(); s_ != cudaSuccess) return fail(cudaError_t(s_)); \
  } while (0)

thread_local int t_device = 0;

// ---------------------------------------------------------------- device memory

struct Allocation {
  char* region;  // whole pages, followed by a guard page
  std::size_t region_bytes;
  char* ptr;
  std::size_t bytes;
  int device;
};

std::mutex g_state;  // everything below, and the streams
char* g_arena = nullptr;
std::size_t g_arena_used = 0;
auto& g_live = immortal<std::map<std::uintptr_t, Allocation>>();   // by ptr
auto& g_freed = immortal<std::map<std::uintptr_t, Allocation>>();  // by ptr, for fault reports
auto& g_device_bytes = immortal<std::vector<std::size_t>>();

void protect(const Allocation& a, bool accessible) {
  mprotect(a.region, a.region_bytes, accessible ? PROT_READ | PROT_WRITE : PROT_NONE);
}

const Allocation* find_in(const std::map<std::uintptr_t, Allocation>& m, std::uintptr_t p) {
  auto it = m.upper_bound(p);
  if (it == m.begin()) return nullptr;
  --it;
  const Allocation& a = it->second;
  const auto lo = reinterpret_cast<std::uintptr_t>(a.region);
  return p >= lo && p < lo + a.region_bytes + kPage ? &a : nullptr;
}

// g_state held
const Allocation* live_allocation(const void* p, std::size_t bytes) {
  const auto u = reinterpret_cast<std::uintptr_t>(p);
  auto it = g_live.upper_bound(u);
  if (it == g_live.begin()) return nullptr;
  --it;
  const Allocation& a = it->second;
  const auto lo = reinterpret_cast<std::uintptr_t>(a.ptr);
  if (u < lo || u > lo + a.bytes || bytes > lo + a.bytes - u) return nullptr;
  return &a;
}

bool in_arena(const void* p) {
  const auto u = reinterpret_cast<std::uintptr_t>(p);
  const auto lo = reinterpret_cast<std::uintptr_t>(g_arena);
  return g_arena != nullptr && u >= lo && u < lo + kArenaBytes;
}

// The kernel running now on this host thread, for fault reports.
thread_local const char* t_kernel = nullptr;

struct sigaction g_previous_segv;

void on_segv(int sig, siginfo_t* info, void* uctx) {
  const void* addr = info->si_addr;
  if (!in_arena(addr)) {  // not ours: whoever handled it before
    sigaction(SIGSEGV, &g_previous_segv, nullptr);
    (void)sig;
    (void)uctx;
    return;
  }
  char msg[512];
  const auto u = reinterpret_cast<std::uintptr_t>(addr);
  const Allocation* a = find_in(g_live, u);
  const char* what = "live";
  if (a == nullptr) {
    a = find_in(g_freed, u);
    what = "freed";
  }
  const char* who = t_kernel != nullptr ? t_kernel : "the host (device memory outside any queued work)";
  int n;
  if (a != nullptr) {
    const auto lo = reinterpret_cast<std::uintptr_t>(a->ptr);
    const long long off = static_cast<long long>(u) - static_cast<long long>(lo);
    n = std::snprintf(msg, sizeof msg,
                      "tapeflow CUDA emulator: illegal address: %s touched byte %lld of a %s %zu-byte allocation "
                      "on device %d (at %p)\n",
                      who, off, what, a->bytes, a->device, addr);
  } else {
    n = std::snprintf(msg, sizeof msg, "tapeflow CUDA emulator: illegal address: %s touched unallocated %p\n", who,
                      addr);
  }
  if (t_thread != nullptr && t_kernel != nullptr) {
    n += std::snprintf(msg + n, sizeof msg - static_cast<std::size_t>(n),
                       "  in block (%u, %u, %u), thread (%u, %u, %u)\n", t_thread->block->block_idx.x,
                       t_thread->block->block_idx.y, t_thread->block->block_idx.z, t_thread->thread_idx.x,
                       t_thread->thread_idx.y, t_thread->thread_idx.z);
  }
  if (write(2, msg, static_cast<std::size_t>(n)) < 0) {
  }
  // the access faults again, for the handler before ours (a test framework's) or the default
  sigaction(SIGSEGV, &g_previous_segv, nullptr);
}

// Puts on_segv in front of whatever handles SIGSEGV now (test frameworks install their own
// per test): called at every allocation and every wait, a system call each.
void install_fault_handler() {
  struct sigaction now {};
  sigaction(SIGSEGV, nullptr, &now);
  if ((now.sa_flags & SA_SIGINFO) != 0 && now.sa_sigaction == on_segv) return;
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous_segv);
}

// g_state held
bool reserve_arena() {
  if (g_arena != nullptr) return true;
  void* p = mmap(nullptr, kArenaBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  g_arena = static_cast<char*>(p);
  g_device_bytes.assign(static_cast<std::size_t>(device_total()), 0);
  return true;
}

// ---------------------------------------------------------------- streams

// Queued work and the allocations it may touch.
struct Work {
  std::function<void()> run;
  std::vector<Allocation> touched;
};
struct Stream {
  int device;
  std::deque<Work> work;
};
auto& g_streams = immortal<std::set<Stream*>>();
auto& g_events = immortal<std::set<cudaEvent_t>>();
std::uint64_t g_event_records = 0;
auto& g_default_streams = immortal<std::vector<Stream*>>();  // per device, for stream 0

// g_state held; nullptr when the handle is no stream
Stream* resolve(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) {
    if (g_default_streams.empty()) {
      for (int d = 0; d < device_total(); ++d) g_default_streams.push_back(new Stream{d, {}});
    }
    return g_default_streams[static_cast<std::size_t>(t_device)];
  }
  auto* st = reinterpret_cast<Stream*>(s);
  return g_streams.count(st) != 0 ? st : nullptr;
}

std::mutex g_exec;  // one device engine: queued work runs one item at a time

// Runs the queued work of the streams picked by `which`, in order, each item with the
// allocations it was given opened.
template <class Pick>
cudaError_t drain(Pick which) {
  std::lock_guard<std::mutex> exec(g_exec);
  install_fault_handler();
  for (;;) {
    Work item;
    {
      std::lock_guard<std::mutex> lock(g_state);
      const auto ready = [&](Stream* s) { return !s->work.empty() && which(s); };
      Stream* next = nullptr;
      if (auto d = std::find_if(g_default_streams.begin(), g_default_streams.end(), ready);
          d != g_default_streams.end()) {
        next = *d;
      } else if (auto o = std::find_if(g_streams.begin(), g_streams.end(), ready); o != g_streams.end()) {
        next = *o;
      } else {
        break;
      }
      item = std::move(next->work.front());
      next->work.pop_front();
    }
    if (g_sticky.load() != cudaSuccess) continue;  // a dead context runs nothing more
    if (protect_enabled())
      for (const Allocation& a : item.touched) protect(a, true);
    item.run();
    if (protect_enabled())
      for (const Allocation& a : item.touched) protect(a, false);
  }
  const int s = g_sticky.load();
  return s == cudaSuccess ? cudaSuccess : fail(cudaError_t(s));
}

cudaError_t drain_device(int device) {
  return drain([device](Stream* s) { return s->device == device; });
}

// ---------------------------------------------------------------- the block executor

// Under ThreadSanitizer, the calling thread's accesses go unrecorded while one lives (the
// allocator then resets the record of what it hands out or takes back).
struct IgnoreAccesses {
#if TAPEFLOW_EMU_TSAN_ON
  IgnoreAccesses() {
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~IgnoreAccesses() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
  }
#else
  IgnoreAccesses() {}  // user-provided: an unused guard is no warning
#endif
};

// Memory that ThreadSanitizer takes as never touched (a block's shared memory): allocated and
// freed with accesses ignored, so no earlier (unordered) user's accesses race with the next.
void* fresh_memory(std::size_t bytes, std::size_t align) {
  align = std::max<std::size_t>(align, 16);
  void* p = nullptr;
  {
    const IgnoreAccesses ignore;
    p = std::aligned_alloc(align, (bytes + align - 1) / align * align);
  }
  if (p == nullptr) {
    report("out of host memory for a block");
    std::abort();
  }
  return p;
}
void free_memory(void* p) {
  const IgnoreAccesses ignore;
  std::free(p);
}

#if TAPEFLOW_EMU_ASAN
constexpr std::size_t kStackBytes = std::size_t(512) << 10;
#else
constexpr std::size_t kStackBytes = std::size_t(128) << 10;
#endif

// A fiber's saved registers. On x86-64 a switch is a few instructions (callee-saved
// registers, the stack pointer, MXCSR and the x87 control word); elsewhere ucontext, whose
// swapcontext also saves the signal mask (a system call per switch).
#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;
};
extern "C" void tapeflow_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .p2align 4
  .type tapeflow_emu_switch, @function
tapeflow_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size tapeflow_emu_switch, .-tapeflow_emu_switch
)");
void switch_context(Context& from, Context& to) { tapeflow_emu_switch(&from.sp, to.sp); }
// A context that starts `entry` (which never returns) on the stack [lo, lo + size).
void make_context(Context& c, char* lo, std::size_t size, void (*entry)()) {
  auto top = reinterpret_cast<std::uintptr_t>(lo + size) & ~std::uintptr_t(15);
  auto* sp = reinterpret_cast<std::uint64_t*>(top);
  *--sp = 0;                                          // entry's (absent) return address
  *--sp = reinterpret_cast<std::uint64_t>(entry);     // popped by ret: 16-aligned + 8 at entry
  for (int r = 0; r < 6; ++r) *--sp = 0;              // rbp rbx r12 r13 r14 r15
  std::uint32_t csr[2] = {0, 0};
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(csr[0]), "=m"(csr[1]));
  *--sp = (std::uint64_t(csr[1] & 0xffffu) << 32) | csr[0];
  c.sp = sp;
}
#else
struct Context {
  ucontext_t uc;
};
void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
void make_context(Context& c, char* lo, std::size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = lo;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

enum class State { Ready, Running, Waiting, Done, Abandoned };
enum class Wait { None, Block, Warp };

struct Fiber {
  Context uc;
  char* stack = nullptr;  // kStackBytes, the lowest page a guard
  State state = State::Ready;
  Wait wait = Wait::None;
  std::uint64_t wait_gen = 0;
  ThreadCtx ctx{};
  int linear = 0;
  void* fake_stack = nullptr;
  void* tsan = nullptr;  // TAPEFLOW_TSAN: the CUDA thread's pooled fiber (stack: its stack)
};

// TAPEFLOW_TSAN: a ThreadSanitizer fiber and the stack only it runs on (so its earlier CUDA
// threads' stack accesses are ordered before its later ones' by program order).
struct TsanFiber {
  void* fiber;
  char* stack;
};
// Distinct fibers per grid at most; a larger grid reuses its finished blocks' fibers, which
// orders those blocks before the reusing threads (some races between blocks go unseen).
constexpr std::size_t kMaxTsanFibers = 4096;

struct WarpState {
  int lanes = 32;
  int arrived = 0;
  std::uint64_t gen = 0;
  std::uint64_t slots[32] = {};
};

struct Executor {
  Context sched;
  std::vector<Fiber> fibers;
  std::vector<WarpState> warps;
  BlockCtx block{};
  int threads = 0;
  int current = -1;
  int bar_arrived = 0;
  std::uint64_t bar_gen = 0;
  const std::function<void()>* body = nullptr;
  struct SharedVar {
    const void* key;
    void* memory;
  };
  std::vector<SharedVar> shared;  // the running block's __shared__ variables
  std::string error;
  const void* sched_bottom = nullptr;
  std::size_t sched_size = 0;
  void* sched_fake = nullptr;
  // TAPEFLOW_TSAN: the host thread's fiber; the fiber pool (free, and used by the running
  // grid); the addresses the host releases at a grid's start and its threads at their end;
  // those that __syncthreads() and each warp's shuffles synchronise on, malloc'd per block
  // and freed after it, which forgets their clocks (nothing carries to the next block):
  // [g % 2] the block's barrier of generation g, [2 + 2 w + g % 2] warp w's (two per barrier,
  // as a thread may arrive at the next one before another has left this one).
  void* sched_tsan = nullptr;
  std::vector<TsanFiber> tsan_free, tsan_used;
  std::size_t tsan_reuse = 0;
  char grid_start = 0, grid_done = 0;
  char* block_sync = nullptr;
};
thread_local Executor* t_exec = nullptr;

Executor& executor() {
  if (t_exec == nullptr) t_exec = new Executor();  // one per host thread, kept
  return *t_exec;
}

void switch_to_scheduler(Executor& e, Fiber& f) {
#if TAPEFLOW_EMU_TSAN_ON
  __tsan_switch_to_fiber(e.sched_tsan, __tsan_switch_to_fiber_no_sync);
#endif
#if TAPEFLOW_EMU_ASAN
  __sanitizer_start_switch_fiber(&f.fake_stack, e.sched_bottom, e.sched_size);
#endif
  switch_context(f.uc, e.sched);
#if TAPEFLOW_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &e.sched_bottom, &e.sched_size);
#endif
}

void fiber_main() {
  Executor& e = *t_exec;
  Fiber& f = e.fibers[static_cast<std::size_t>(e.current)];
#if TAPEFLOW_EMU_ASAN
  // The fake stack (ASan's frames for detect_stack_use_after_return) stays with the fiber from
  // one CUDA thread to the next: a fresh one per thread, mapped and unmapped each time, made
  // the sanitized suite a hundred times slower.
  __sanitizer_finish_switch_fiber(f.fake_stack, &e.sched_bottom, &e.sched_size);
#endif
#if TAPEFLOW_EMU_TSAN_ON
  __tsan_acquire(&e.grid_start);
#endif
  (*e.body)();
  f.state = State::Done;
#if TAPEFLOW_EMU_TSAN_ON
  __tsan_release(&e.grid_done);
  __tsan_switch_to_fiber(e.sched_tsan, __tsan_switch_to_fiber_no_sync);
#endif
#if TAPEFLOW_EMU_ASAN
  __sanitizer_start_switch_fiber(&f.fake_stack, e.sched_bottom, e.sched_size);  // kept, see above
#endif
  switch_context(f.uc, e.sched);
  std::abort();  // a finished fiber is never resumed
}

Fiber& current_fiber(const char* what) {
  if (t_exec == nullptr || t_exec->current < 0) {
    report(std::string(what) + " called outside a kernel");
    std::abort();
  }
  return t_exec->fibers[static_cast<std::size_t>(t_exec->current)];
}

// Stops the calling CUDA thread for good: its block fails with `message`.
[[noreturn]] void abandon(Executor& e, Fiber& f, const std::string& message) {
  if (e.error.empty()) e.error = message;
  f.state = State::Abandoned;
  switch_to_scheduler(e, f);
  std::abort();  // never resumed
}

void wait_here(Executor& e, Fiber& f, Wait kind, std::uint64_t gen) {
  f.state = State::Waiting;
  f.wait = kind;
  f.wait_gen = gen;
  switch_to_scheduler(e, f);
}

bool released(const Executor& e, const Fiber& f) {
  if (f.wait == Wait::Block) return e.bar_gen != f.wait_gen;
  return e.warps[static_cast<std::size_t>(f.linear / 32)].gen != f.wait_gen;
}

// TAPEFLOW_TSAN: a barrier's ordering; every thread releases on arrival, acquires on leaving
// (slot: its address in block_sync).
enum class Sync { Arrive, Leave };
void barrier_sync(const Executor& e, int slot, Sync step) {
#if TAPEFLOW_EMU_TSAN_ON
  if (step == Sync::Arrive) {
    __tsan_release(e.block_sync + slot);
  } else {
    __tsan_acquire(e.block_sync + slot);
  }
#else
  (void)e;
  (void)slot;
  (void)step;
#endif
}

void warp_barrier(Executor& e, Fiber& f) {
  const int warp = f.linear / 32;
  WarpState& w = e.warps[static_cast<std::size_t>(warp)];
  const int slot = 2 + 2 * warp + static_cast<int>(w.gen % 2);
  barrier_sync(e, slot, Sync::Arrive);
  if (++w.arrived == w.lanes) {
    w.arrived = 0;
    ++w.gen;
  } else {
    wait_here(e, f, Wait::Warp, w.gen);
  }
  barrier_sync(e, slot, Sync::Leave);
}

std::string dim(const uint3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

// A fiber stack of kStackBytes whose lowest page is a guard, or nullptr.
char* map_stack() {
  void* s = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) return nullptr;
  mprotect(s, kPage, PROT_NONE);
  return static_cast<char*>(s);
}

#if TAPEFLOW_EMU_TSAN_ON
// A fiber (and its stack) that no thread of the running grid has used, while there are few
// enough; false (with e.error) when no stack can be mapped.
bool take_tsan_fiber(Executor& e, Fiber& f) {
  TsanFiber t{};
  if (!e.tsan_free.empty()) {
    t = e.tsan_free.back();
    e.tsan_free.pop_back();
  } else if (e.tsan_used.size() >= kMaxTsanFibers) {  // taken out, back at the block's end
    const std::size_t i = e.tsan_reuse++ % e.tsan_used.size();
    t = e.tsan_used[i];
    e.tsan_used[i] = e.tsan_used.back();
    e.tsan_used.pop_back();
  } else {
    char* stack = map_stack();
    if (stack == nullptr) {
      e.error = "cannot map a fiber stack";
      return false;
    }
    t = {__tsan_create_fiber(0), stack};
  }
  f.tsan = t.fiber;
  f.stack = t.stack;
  return true;
}
#endif

void free_shared(Executor& e) {
  for (const auto& v : e.shared) free_memory(v.memory);
  e.shared.clear();
}

// Runs one block; false (with e.error) when it could not finish.
bool run_block(Executor& e) {
  const int n = e.threads;  // e.fibers has n (run_grid)
  e.warps.assign(static_cast<std::size_t>((n + 31) / 32), WarpState{});
  for (std::size_t w = 0; w < e.warps.size(); ++w) e.warps[w].lanes = std::min(32, n - static_cast<int>(w) * 32);
  e.bar_arrived = 0;
  free_shared(e);  // the previous block's
#if TAPEFLOW_EMU_TSAN_ON
  e.block_sync = static_cast<char*>(std::malloc(2 + 2 * e.warps.size()));
  struct EndBlock {  // the block's fibers go to the grid's used ones, however the block ends
    Executor& e;
    int n;
    ~EndBlock() {
      for (int t = 0; t < n; ++t) {
        Fiber& f = e.fibers[static_cast<std::size_t>(t)];
        if (f.tsan == nullptr) continue;
        if (f.state == State::Done) {
          e.tsan_used.push_back({f.tsan, f.stack});
        } else {  // a failed block's thread, stopped inside the kernel: ends as if it had returned
          __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
          __tsan_release(&e.grid_done);
          __tsan_switch_to_fiber(e.sched_tsan, __tsan_switch_to_fiber_no_sync);
          __tsan_destroy_fiber(f.tsan);
          munmap(f.stack, kStackBytes);
        }
        f.tsan = nullptr;
        f.stack = nullptr;
      }
      std::free(e.block_sync);
      e.block_sync = nullptr;
    }
  } end_block{e, n};
#endif
  const dim3 bd = e.block.block_dim;
  for (int t = 0; t < n; ++t) {
    Fiber& f = e.fibers[static_cast<std::size_t>(t)];
    if (f.stack == nullptr && !TAPEFLOW_EMU_TSAN_ON) {  // under TSan, take_tsan_fiber's
      f.stack = map_stack();
      if (f.stack == nullptr) {
        e.error = "cannot map a fiber stack";
        return false;
      }
    }
    f.state = State::Ready;
    f.wait = Wait::None;
    f.linear = t;
    f.ctx.block = &e.block;
    f.ctx.thread_idx = uint3{static_cast<unsigned>(t) % bd.x, (static_cast<unsigned>(t) / bd.x) % bd.y,
                             static_cast<unsigned>(t) / (bd.x * bd.y)};
  }
  // Warp by warp: each warp runs as far as it can (its lanes switching at shuffles) before the
  // next one starts, so one warp gets ahead of the others up to the next __syncthreads(), as
  // one may on a GPU: a warp reading what another warp has not written yet, or overwriting
  // what another has not read yet, computes garbage here.
  const bool rev = reverse_order();
  const int warps = static_cast<int>(e.warps.size());
  int remaining = n;
  while (remaining > 0) {
    bool ran = false;
    for (int wi = 0; wi < warps && e.error.empty(); ++wi) {
      const int w = rev ? warps - 1 - wi : wi;
      const int lanes = e.warps[static_cast<std::size_t>(w)].lanes;
      for (bool again = true; again && e.error.empty();) {
        again = false;
        for (int li = 0; li < lanes && e.error.empty(); ++li) {
          const int t = w * 32 + (rev ? lanes - 1 - li : li);
          Fiber& f = e.fibers[static_cast<std::size_t>(t)];
          if (f.state == State::Done || f.state == State::Abandoned) continue;
          if (f.state == State::Waiting && !released(e, f)) continue;
          if (f.state == State::Ready) {
#if TAPEFLOW_EMU_TSAN_ON
            if (!take_tsan_fiber(e, f)) return false;
#endif
            make_context(f.uc, f.stack + kPage, kStackBytes - kPage, fiber_main);
#if TAPEFLOW_EMU_TSAN_ON
            char name[96];
            std::snprintf(name, sizeof name, "CUDA thread (%u, %u, %u) of block (%u, %u, %u)", f.ctx.thread_idx.x,
                          f.ctx.thread_idx.y, f.ctx.thread_idx.z, e.block.block_idx.x, e.block.block_idx.y,
                          e.block.block_idx.z);
            __tsan_set_fiber_name(f.tsan, name);
#endif
          }
          f.state = State::Running;
          e.current = t;
          t_thread = &f.ctx;
#if TAPEFLOW_EMU_ASAN
          __sanitizer_start_switch_fiber(&e.sched_fake, f.stack + kPage, kStackBytes - kPage);
#endif
#if TAPEFLOW_EMU_TSAN_ON
          __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
#endif
          switch_context(e.sched, f.uc);
#if TAPEFLOW_EMU_ASAN
          __sanitizer_finish_switch_fiber(e.sched_fake, nullptr, nullptr);
#endif
          e.current = -1;
          t_thread = nullptr;
          ran = again = true;
          if (f.state == State::Done) --remaining;
        }
      }
    }
    if (!e.error.empty()) return false;
    if (!ran) {
      int at_barrier = 0, at_shuffle = 0, done = 0;
      for (int t = 0; t < n; ++t) {
        const Fiber& f = e.fibers[static_cast<std::size_t>(t)];
        if (f.state == State::Done) ++done;
        else if (f.wait == Wait::Block) ++at_barrier;
        else ++at_shuffle;
      }
      e.error = "block " + dim(e.block.block_idx) + " of " + std::to_string(n) + " threads cannot go on: " +
                std::to_string(at_barrier) + " wait at __syncthreads(), " + std::to_string(at_shuffle) +
                " at a warp shuffle, " + std::to_string(done) +
                " have returned (a barrier or shuffle not reached by every thread it needs)";
      return false;
    }
  }
  return true;
}

void run_grid(const LaunchConfig& c, const std::function<void()>& body) {
  Executor& e = executor();
  e.body = &body;
  e.threads = static_cast<int>(c.block.x * c.block.y * c.block.z);
  e.error.clear();
  e.block.block_dim = c.block;
  e.block.grid_dim = c.grid;
  t_kernel = c.kernel;
  // the kernels read their indices from here: allocated before the grid starts, below
  if (e.fibers.size() < static_cast<std::size_t>(e.threads)) e.fibers.resize(static_cast<std::size_t>(e.threads));
#if TAPEFLOW_EMU_TSAN_ON
  e.sched_tsan = __tsan_get_current_fiber();
  __tsan_release(&e.grid_start);  // the host's work so far before every thread of the grid
  // every thread of the grid, whichever block, before the host's next work; its fibers back
  struct AfterGrid {
    Executor& e;
    ~AfterGrid() {
      __tsan_acquire(&e.grid_done);
      e.tsan_free.insert(e.tsan_free.end(), e.tsan_used.begin(), e.tsan_used.end());
      e.tsan_used.clear();
      e.tsan_reuse = 0;
    }
  } after_grid{e};
#endif
  const bool rev = reverse_order();
  for (unsigned k = 0; k < c.grid.z; ++k) {
    const unsigned z = rev ? c.grid.z - 1 - k : k;
    for (unsigned j = 0; j < c.grid.y; ++j) {
      const unsigned y = rev ? c.grid.y - 1 - j : j;
      for (unsigned i = 0; i < c.grid.x; ++i) {
        const unsigned x = rev ? c.grid.x - 1 - i : i;
        e.block.block_idx = uint3{x, y, z};
        if (!run_block(e)) {
          free_shared(e);
          report(std::string("kernel ") + c.kernel + ": " + e.error);
          set_sticky(cudaErrorLaunchFailure);
          t_kernel = nullptr;
          return;
        }
      }
    }
  }
  free_shared(e);
  t_kernel = nullptr;
}

}  // namespace

// ---------------------------------------------------------------- device-side calls

void syncthreads() {
  Fiber& f = current_fiber("__syncthreads()");
  Executor& e = *t_exec;
  const int slot = static_cast<int>(e.bar_gen % 2);
  barrier_sync(e, slot, Sync::Arrive);
  if (++e.bar_arrived == e.threads) {
    e.bar_arrived = 0;
    ++e.bar_gen;
  } else {
    wait_here(e, f, Wait::Block, e.bar_gen);
  }
  barrier_sync(e, slot, Sync::Leave);
}

long long max_blocks(long long fallback) {
  // Under ThreadSanitizer every CUDA thread of a grid needs a fiber of its own: 3 blocks
  // unless told otherwise (kMaxTsanFibers bounds the rest).
  const int n = env_int("TAPEFLOW_CUDA_EMU_MAX_BLOCKS", TAPEFLOW_EMU_TSAN_ON ? 3 : 0);
  return n >= 1 ? n : fallback;
}

void* shared_block(const void* key, std::size_t bytes, std::size_t align) {
  current_fiber("a __shared__ variable");
  Executor& e = *t_exec;
  for (const auto& v : e.shared)
    if (v.key == key) return v.memory;
  void* p = fresh_memory(bytes, align);
  // volatile: stores of this file that ThreadSanitizer does not see (memset would be seen)
  auto* bytes_p = static_cast<volatile unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i) bytes_p[i] = 0xff;
  e.shared.push_back({key, p});
  return p;
}

std::uint64_t shfl_xor_bits(unsigned mask, std::uint64_t bits, int lane_mask, int width) {
  Fiber& f = current_fiber("__shfl_xor_sync()");
  Executor& e = *t_exec;
  WarpState& w = e.warps[static_cast<std::size_t>(f.linear / 32)];
  const unsigned full = w.lanes == 32 ? 0xffffffffu : (1u << w.lanes) - 1u;
  if (mask != full || width <= 0 || width > 32 || (width & (width - 1)) != 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "__shfl_xor_sync(0x%08x, ..., %d, width %d): the emulator models full warps only",
                  mask, lane_mask, width);
    abandon(e, f, buf);
  }
  const int lane = f.linear % 32;
  int src = lane ^ lane_mask;
  if (src / width != lane / width || src >= w.lanes) src = lane;  // out of range: its own value
  w.slots[lane] = bits;
  warp_barrier(e, f);
  const std::uint64_t r = w.slots[src];
  warp_barrier(e, f);  // every lane has read before the next shuffle writes
  return r;
}

// ---------------------------------------------------------------- host-side helpers

void report(const std::string& message) { std::fprintf(stderr, "tapeflow CUDA emulator: %s\n", message.c_str()); }

int current_device() { return t_device; }

int device_of(const void* p, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(g_state);
  const Allocation* a = live_allocation(p, bytes);
  return a != nullptr ? a->device : -1;
}

cudaError_t enqueue(cudaStream_t stream, std::function<void()> work, std::initializer_list<const void*> touched) {
  std::lock_guard<std::mutex> lock(g_state);
  Stream* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  Work w{std::move(work), {}};
  for (const void* p : touched)
    if (const Allocation* a = live_allocation(p, 0)) w.touched.push_back(*a);
  s->work.push_back(std::move(w));
  return cudaSuccess;
}

void profiled(const char* name, unsigned long long threads, const std::function<void()>& work) {
  if (!profile_enabled()) return work();
  const auto t0 = std::chrono::steady_clock::now();
  work();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard<std::mutex> lock(g_profile_lock);
  static const bool registered = (std::atexit(print_profile), true);
  (void)registered;
  KernelStats& k = g_profile[name];
  ++k.launches;
  k.threads += threads;
  k.seconds += seconds;
}

void set_sticky(cudaError_t err) {
  int expected = cudaSuccess;
  g_sticky.compare_exchange_strong(expected, err);
}

void enqueue_kernel(const LaunchConfig& c, const void* const* pointers, int count, std::function<void()> body) {
  if (g_sticky.load() != cudaSuccess) return;
  const unsigned long long threads = 1ull * c.block.x * c.block.y * c.block.z;
  if (threads == 0 || threads > kMaxThreadsPerBlock || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 ||
      c.grid.z == 0 || c.grid.x > 0x7fffffffu || c.grid.y > 65535 || c.grid.z > 65535) {
    report(std::string("kernel ") + c.kernel + ": invalid configuration: grid " + dim(uint3{c.grid.x, c.grid.y, c.grid.z}) +
           ", block " + dim(uint3{c.block.x, c.block.y, c.block.z}));
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  if (c.param_bytes > 32764) {
    report(std::string("kernel ") + c.kernel + ": " + std::to_string(c.param_bytes) + " bytes of parameters");
    fail(cudaErrorInvalidValue);
    return;
  }
  std::lock_guard<std::mutex> lock(g_state);
  Stream* s = resolve(c.stream);
  if (s == nullptr || s->device != t_device) {
    report(std::string("kernel ") + c.kernel + ": launched on " +
           (s == nullptr ? std::string("an unknown stream")
                         : "a stream of device " + std::to_string(s->device)) +
           " from device " + std::to_string(t_device));
    fail(cudaErrorInvalidResourceHandle);
    return;
  }
  Work w{nullptr, {}};
  for (int i = 0; i < count; ++i) {
    if (pointers[i] == nullptr) continue;
    const Allocation* a = live_allocation(pointers[i], 0);
    if (a != nullptr) w.touched.push_back(*a);
    if (a == nullptr || a->device != s->device) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%p", pointers[i]);
      report(std::string("kernel ") + c.kernel + ": pointer argument " + std::to_string(i + 1) + " (" + buf + ") is " +
             (a == nullptr ? (in_arena(pointers[i]) ? std::string("freed or outside any device allocation")
                                                    : std::string("host memory"))
                           : "memory of device " + std::to_string(a->device)) +
             ", launched on device " + std::to_string(s->device));
      set_sticky(cudaErrorIllegalAddress);
      return;
    }
  }
  w.run = [c, body = std::move(body)] {
    profiled(c.kernel, 1ull * c.grid.x * c.grid.y * c.grid.z * c.block.x * c.block.y * c.block.z,
             [&] { run_grid(c, body); });
  };
  s->work.push_back(std::move(w));
}

}  // namespace tapeflow_emu

// cudaEvent_t: the stream it was last recorded on, and when the stream reached it
struct CUevent_st {
  tapeflow_emu::Stream* stream = nullptr;
  std::uint64_t generation = 0;
  bool complete = false;
  std::chrono::steady_clock::time_point when{};
};

// ---------------------------------------------------------------- the runtime API

using namespace tapeflow_emu;  // NOLINT

extern "C" {

cudaError_t cudaGetLastError() {
  const int s = g_sticky.load();
  const cudaError_t e = s != cudaSuccess ? cudaError_t(s) : t_last;
  t_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  const int s = g_sticky.load();
  return s != cudaSuccess ? cudaError_t(s) : t_last;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected (TAPEFLOW_CUDA_EMU_DEVICES=0)";
    case cudaErrorNotReady: return "device not ready";
    default: return "unknown error";
  }
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 0;
  if (device_total() == 0) return fail(cudaErrorNoDevice);
  *count = device_total();
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device < 0 || device >= device_total()) return fail(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "tapeflow CUDA emulator");
  prop->totalGlobalMem = kDeviceBytes;
  prop->major = 9;
  prop->minor = 0;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = kMaxThreadsPerBlock;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->sharedMemPerBlock = 48 << 10;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  TAPEFLOW_EMU_STICKY();
  if (device < 0 || device >= device_total()) return fail(device_total() == 0 ? cudaErrorNoDevice : cudaErrorInvalidDevice);
  t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device_total() == 0) return fail(cudaErrorNoDevice);
  *device = t_device;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  TAPEFLOW_EMU_STICKY();
  *ptr = nullptr;
  if (device_total() == 0) return fail(cudaErrorNoDevice);
  if (bytes == 0) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_state);
  if (!reserve_arena()) return fail(cudaErrorMemoryAllocation);
  install_fault_handler();
  const std::size_t pages = (bytes + kPage - 1) / kPage;
  auto& used = g_device_bytes[static_cast<std::size_t>(t_device)];
  if (bytes > kDeviceBytes - used || (pages + 1) * kPage > kArenaBytes - g_arena_used) {
    return fail(cudaErrorMemoryAllocation);
  }
  Allocation a{};
  a.region = g_arena + g_arena_used;
  a.region_bytes = pages * kPage;
  a.bytes = bytes;
  a.ptr = a.region + ((a.region_bytes - bytes) & ~std::size_t(255));  // 256-aligned, ending at the guard
  a.device = t_device;
  g_arena_used += a.region_bytes + kPage;  // the guard page stays PROT_NONE
  if (mprotect(a.region, a.region_bytes, PROT_READ | PROT_WRITE) != 0) return fail(cudaErrorMemoryAllocation);
  // fresh device memory is not zero: a kernel that reads what nobody wrote shows it
  std::memset(a.region, 0xA5, a.region_bytes);
  if (protect_enabled()) protect(a, false);  // closed to the host
  used += bytes;
  g_live[reinterpret_cast<std::uintptr_t>(a.ptr)] = a;
  *ptr = a.ptr;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  TAPEFLOW_EMU_STICKY();
  if (ptr == nullptr) return cudaSuccess;
  int device = -1;
  {
    std::lock_guard<std::mutex> lock(g_state);
    auto it = g_live.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == g_live.end()) {
      report("cudaFree of a pointer that is no live allocation");
      return fail(cudaErrorInvalidValue);
    }
    device = it->second.device;
  }
  // cudaFree waits for the device: queued work may still use the memory
  if (const cudaError_t e = drain_device(device); e != cudaSuccess) return e;
  std::lock_guard<std::mutex> lock(g_state);
  auto it = g_live.find(reinterpret_cast<std::uintptr_t>(ptr));
  if (it == g_live.end()) return fail(cudaErrorInvalidValue);
  Allocation a = it->second;
  g_live.erase(it);
  protect(a, false);
  madvise(a.region, a.region_bytes, MADV_DONTNEED);
  g_device_bytes[static_cast<std::size_t>(a.device)] -= a.bytes;
  g_freed[reinterpret_cast<std::uintptr_t>(a.ptr)] = a;  // its addresses are never reused
  return cudaSuccess;
}

// Page-locked host memory: plain host memory here (the copies from it run when the stream
// does, as a real DMA from pinned memory may). cudaFreeHost waits for every device, as CUDA's
// may, so a copy still queued never reads freed memory.
cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned int flags) {
  TAPEFLOW_EMU_STICKY();
  (void)flags;
  if (ptr == nullptr) return fail(cudaErrorInvalidValue);
  *ptr = bytes == 0 ? nullptr : std::malloc(bytes);
  return bytes == 0 || *ptr != nullptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  TAPEFLOW_EMU_STICKY();
  if (ptr == nullptr) return cudaSuccess;
  for (int d = 0; d < device_total(); ++d) {
    if (const cudaError_t e = drain_device(d); e != cudaSuccess) return e;
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  TAPEFLOW_EMU_STICKY();
  (void)flags;
  if (device_total() == 0) return fail(cudaErrorNoDevice);
  std::lock_guard<std::mutex> lock(g_state);
  auto* s = new Stream{t_device, {}};
  g_streams.insert(s);
  *stream = reinterpret_cast<cudaStream_t>(s);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  TAPEFLOW_EMU_STICKY();
  Stream* target = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_state);
    target = resolve(stream);
  }
  if (target == nullptr) return fail(cudaErrorInvalidResourceHandle);
  return drain([target](Stream* s) { return s == target; });
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  const cudaError_t e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return e;
  std::lock_guard<std::mutex> lock(g_state);
  auto* s = reinterpret_cast<Stream*>(stream);
  if (g_streams.erase(s) == 0) return fail(cudaErrorInvalidResourceHandle);
  delete s;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  TAPEFLOW_EMU_STICKY();
  return drain_device(t_device);
}

// Events: recording one queues a time stamp on the stream; it is complete once the stream ran
// up to it (when the host waits). Elapsed times are host times of the emulator's work, so they
// say nothing of a GPU's speed.
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  TAPEFLOW_EMU_STICKY();
  (void)flags;
  if (event == nullptr) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_state);
  auto* e = new CUevent_st{};
  g_events.insert(e);
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(g_state);
  if (g_events.erase(event) == 0) return fail(cudaErrorInvalidResourceHandle);
  delete event;  // a stamp still queued finds it gone (below) and does nothing
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  TAPEFLOW_EMU_STICKY();
  std::uint64_t gen = 0;
  {
    std::lock_guard<std::mutex> lock(g_state);
    if (g_events.count(event) == 0) return fail(cudaErrorInvalidResourceHandle);
    Stream* s = resolve(stream);
    if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
    event->stream = s;
    event->complete = false;
    gen = ++g_event_records;  // never repeats, so a stamp cannot mark a later record or event
    event->generation = gen;
  }
  return enqueue(stream, [event, gen] {
    std::lock_guard<std::mutex> lock(g_state);
    if (g_events.count(event) == 0 || event->generation != gen) return;  // destroyed, or recorded again
    event->when = std::chrono::steady_clock::now();
    event->complete = true;
  }, {});
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  TAPEFLOW_EMU_STICKY();
  Stream* target = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_state);
    if (g_events.count(event) == 0) return fail(cudaErrorInvalidResourceHandle);
    target = event->stream;
  }
  if (target == nullptr) return cudaSuccess;  // never recorded: complete, as CUDA has it
  return drain([target](Stream* s) { return s == target; });
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  TAPEFLOW_EMU_STICKY();
  std::lock_guard<std::mutex> lock(g_state);
  if (g_events.count(event) == 0) return fail(cudaErrorInvalidResourceHandle);
  return event->stream == nullptr || event->complete ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  TAPEFLOW_EMU_STICKY();
  if (ms == nullptr) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_state);
  if (g_events.count(start) == 0 || g_events.count(end) == 0) return fail(cudaErrorInvalidResourceHandle);
  if (start->stream == nullptr || end->stream == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (!start->complete || !end->complete) return fail(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

namespace {

// Checks a copy's operands against its direction; nullptr when they fit.
const char* copy_problem(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind& kind) {
  std::lock_guard<std::mutex> lock(g_state);
  const bool dst_dev = live_allocation(dst, bytes) != nullptr, src_dev = live_allocation(src, bytes) != nullptr;
  if (kind == cudaMemcpyDefault) {
    kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                   : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  }
  const bool want_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (want_dst && !dst_dev) return in_arena(dst) ? "the destination range is not inside one live allocation"
                                                 : "the destination is host memory";
  if (!want_dst && in_arena(dst)) return "the destination is device memory";
  if (want_src && !src_dev) return in_arena(src) ? "the source range is not inside one live allocation"
                                                 : "the source is host memory";
  if (!want_src && in_arena(src)) return "the source is device memory";
  return nullptr;
}

const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToDevice: return "host to device";
    case cudaMemcpyDeviceToHost: return "device to host";
    case cudaMemcpyDeviceToDevice: return "device to device";
    case cudaMemcpyHostToHost: return "host to host";
    default: return "default";
  }
}

}  // namespace

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  TAPEFLOW_EMU_STICKY();
  if (bytes == 0) return cudaSuccess;
  if (const char* why = copy_problem(dst, src, bytes, kind)) {
    report(std::string("cudaMemcpyAsync (") + kind_name(kind) + ", " + std::to_string(bytes) + " bytes): " + why);
    return fail(cudaErrorInvalidValue);
  }
  // The host side is read or written when the stream gets there, not now.
  return enqueue(stream, [dst, src, bytes] { std::memcpy(dst, src, bytes); }, {dst, src});
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
  if (e != cudaSuccess) return e;
  return cudaStreamSynchronize(nullptr);
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes,
                                cudaStream_t stream) {
  TAPEFLOW_EMU_STICKY();
  if (bytes == 0) return cudaSuccess;
  if (device_of(dst, bytes) != dst_device || device_of(src, bytes) != src_device) {
    report("cudaMemcpyPeerAsync: a range is not inside one live allocation of its device (" +
           std::to_string(src_device) + " -> " + std::to_string(dst_device) + ", " + std::to_string(bytes) +
           " bytes)");
    return fail(cudaErrorInvalidValue);
  }
  return enqueue(stream, [dst, src, bytes] { std::memcpy(dst, src, bytes); }, {dst, src});
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t stream) {
  TAPEFLOW_EMU_STICKY();
  if (bytes == 0) return cudaSuccess;
  if (device_of(ptr, bytes) < 0) {
    report("cudaMemsetAsync: " + std::to_string(bytes) + " bytes are not inside one live allocation");
    return fail(cudaErrorInvalidValue);
  }
  return enqueue(stream, [ptr, value, bytes] { std::memset(ptr, value, bytes); }, {ptr});
}

cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
  const cudaError_t e = cudaMemsetAsync(ptr, value, bytes, nullptr);
  if (e != cudaSuccess) return e;
  return cudaStreamSynchronize(nullptr);
}

}  // extern "C"
