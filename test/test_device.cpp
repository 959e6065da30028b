// The same cases on every device. Each case computes its result on the CPU, then again from
// the very same inputs moved to every other device present, and requires the CPU's values
// (exact for integers, comparisons, copies and random numbers; within a float tolerance where
// the order of additions differs: reductions, matmul, softmax).
//
// Without a usable GPU the CUDA side of every case is skipped and says so once; the CPU side
// still runs, so the cases themselves build and run in every configuration. On a machine with
// a GPU, the same binary runs them on cuda:0.
#include <functional>
#include <limits>
#include <set>

#include "tapeflow/tapeflow.hpp"
#include "test_helpers.hpp"

using namespace th;
using namespace tapeflow::layers;
namespace tf = tapeflow;

namespace {

// The devices other than the CPU that the cases run on: cuda:0 where one is usable.
const std::vector<Device>& other_devices() {
  static const std::vector<Device> devices = [] {
    std::vector<Device> d;
    if (tf::cuda::is_available()) d.push_back(Device::cuda(0));
    return d;
  }();
  return devices;
}

// Says once per test case that the CUDA half is skipped, and why.
void note_skip() {
  if (other_devices().empty()) WARN("CUDA half skipped: " << tf::cuda::status());
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// f on the CPU inputs, then on the inputs moved to each other device; the results must agree
// and live on that device.
void same_on_devices(const std::vector<Tensor>& inputs, const Fn& f, Tol tol = {-1, -1}) {
  const Tensor expected = f(inputs);
  CHECK(expected.device() == Device::cpu());
  for (const Device& d : other_devices()) {
    INFO("device " << d.str());
    std::vector<Tensor> moved;
    for (const auto& t : inputs) moved.push_back(t.defined() ? t.to(d) : t);
    for (const auto& t : moved) {
      if (t.defined()) REQUIRE(t.device() == d);
    }
    const Tensor actual = f(moved);
    CHECK(actual.device() == d);
    check_close(actual.to(Device::cpu()), expected, tol);
  }
}

const Tol kSumTol32{1e-5, 1e-5};
const Tol kMatmulTol32{1e-4, 1e-4};


// The message of the DeviceError `f` throws (`what` names the call in a failure when none).
std::string device_error(const std::function<void()>& f, const std::string& what) {
  try {
    f();
  } catch (const DeviceError& e) {
    return e.what();
  }
  FAIL(what << " did not throw DeviceError");
  return {};
}

}  // namespace

TEST_CASE("device: names, availability and clear errors without a device") {
  CHECK(Device::cpu().str() == "cpu");
  CHECK(Device::cuda(1).str() == "cuda:1");
  CHECK(Device::cuda() == Device::cuda(0));
  CHECK(Device::cpu() != Device::cuda(0));
  const int n = tf::cuda::device_count();
  CHECK(n >= 0);
  CHECK(tf::cuda::is_available() == (n > 0));
  const std::string status = tf::cuda::status();
  INFO(status);
  CHECK(!status.empty());
  // An index past the last device is never usable.
  const Device missing = Device::cuda(n + 3);
  auto names_missing = [&](const Error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find(missing.str()) != std::string::npos);
  };
  try {
    (void)zeros({2}, kFloat32, missing);
    FAIL("zeros on a missing device did not throw");
  } catch (const DeviceError& e) {
    names_missing(e);
  }
  try {
    (void)ones({3}).to(missing);
    FAIL("to() a missing device did not throw");
  } catch (const DeviceError& e) {
    names_missing(e);
  }
  CHECK_THROWS_AS(memory_stats(missing), DeviceError);
  CHECK_THROWS_AS(tf::cuda::synchronize(missing), DeviceError);
  Generator gen(1);
  CHECK_THROWS_AS(uniform({4}, gen, 0, 1, kFloat32, missing), DeviceError);
  // creation functions name themselves (not the allocator or to() inside them)
  const auto starts_with = [&](const std::function<void()>& make, const std::string& op) {
    const std::string what = device_error(make, op + " on a missing device");
    INFO(what);
    CHECK(what.rfind(op + ": device " + missing.str() + " is not available", 0) == 0);
  };
  starts_with([&] { (void)uniform({4}, gen, 0, 1, kFloat32, missing); }, "uniform");
  starts_with([&] { (void)normal({4}, gen, 0, 1, kFloat32, missing); }, "normal");
  starts_with([&] { (void)eye(3, -1, kFloat32, missing); }, "eye");
  starts_with([&] { (void)arange(4, kInt64, missing); }, "arange");
  starts_with([&] { (void)linspace(0, 1, 5, kFloat32, missing); }, "linspace");
  starts_with([&] { (void)tensor({1.f, 2.f}, {2}, kFloat32, missing); }, "tensor");
  starts_with([&] { (void)full({2}, 3.0, kFloat32, missing); }, "full");
  if (n == 0) {
    // The reason is in the message: "no CUDA device: ..." from the runtime.
    try {
      (void)ones({3}).to(Device::cuda(0));
      FAIL("to(cuda:0) without a device did not throw");
    } catch (const DeviceError& e) {
      const std::string what = e.what();
      CHECK(what.find("cuda:0") != std::string::npos);
      CHECK(what.find("no CUDA device") != std::string::npos);
    }
  }
  // A CPU tensor moved to the CPU is itself.
  const Tensor x = ones({2});
  CHECK(x.to(Device::cpu()).id() == x.id());
}

TEST_CASE("device: ops on tensors of different devices name both devices") {
  note_skip();
  for (const Device& d : other_devices()) {
    const Tensor a = ones({2, 3});
    const Tensor b = ones({2, 3}).to(d);
    auto both = [&](const std::function<void()>& f, const char* op) {
      const std::string what = device_error(f, std::string(op) + " across devices");
      INFO(what);
      CHECK(what.find(op) != std::string::npos);
      CHECK(what.find("cpu") != std::string::npos);
      CHECK(what.find(d.str()) != std::string::npos);
    };
    both([&] { (void)add(a, b); }, "add");
    both([&] { (void)matmul(a, b.transpose()); }, "matmul");
    both([&] { (void)concat({a, b}, 0); }, "concat");
    both([&] { (void)where(a > 0.0, b, a); }, "where");
    both([&] { Tensor c = a.clone(); c.add_(b); }, "add_");
    // C++ numbers and other rank-0 CPU tensors mix with device tensors, as in PyTorch.
    const Tensor s = b * 2.0 + tensor<float>({1.5f}, {});
    CHECK(s.device() == d);
    CHECK(s.dtype() == kFloat32);
    CHECK(s.to(Device::cpu()).to_vector<float>() == std::vector<float>(6, 3.5f));
    // Reading values copies to the host and waits for the device.
    CHECK(sum(b).item<double>() == 6.0);
    CHECK(to_string(b).find(d.str()) != std::string::npos);
    CHECK_THROWS_AS(b.data_ptr(), DeviceError);
    CHECK(b.device_data_ptr() != nullptr);
  }
}

TEST_CASE("device: creation functions take a device") {
  note_skip();
  for (const Device& d : other_devices()) {
    INFO(d.str());
    check_close(zeros({2, 3}, kInt32, d).to(Device::cpu()), zeros({2, 3}, kInt32));
    check_close(full({4}, 2.5, kFloat64, d).to(Device::cpu()), full({4}, 2.5, kFloat64));
    check_close(arange(0.0, 5.0, 0.5, kFloat32, d).to(Device::cpu()), arange(0.0, 5.0, 0.5, kFloat32));
    check_close(linspace(-1, 1, 7, kFloat64, d).to(Device::cpu()), linspace(-1, 1, 7, kFloat64));
    check_close(eye(3, 4, kFloat32, d).to(Device::cpu()), eye(3, 4, kFloat32));
    check_close(tensor<std::int64_t>({1, 2, 3, 4}, {2, 2}, kInt64, d).to(Device::cpu()),
                tensor<std::int64_t>({1, 2, 3, 4}, {2, 2}));
    CHECK(scalar(3, kFloat32, d).device() == d);
    CHECK(zeros_like(ones({2}, kFloat32, d)).device() == d);
  }
}

TEST_CASE("device: the same seed gives the same random numbers on every device") {
  note_skip();
  for (DType dt : kFloatDTypes) {
    for (const std::int64_t n : {std::int64_t{1}, std::int64_t{1000}, std::int64_t{1} << 20}) {
      Generator g_cpu(1234), g_dev(1234);
      const Tensor u = uniform({n}, g_cpu, -2, 3, dt);
      const Tensor z = normal({n}, g_cpu, 1, 0.5, dt);
      for (const Device& d : other_devices()) {
        Generator g(1234);
        const Tensor ud = uniform({n}, g, -2, 3, dt, d);
        const Tensor zd = normal({n}, g, 1, 0.5, dt, d);
        CHECK(ud.device() == d);
        check_close(ud.to(Device::cpu()), u, {0, 0});  // integer arithmetic: bit for bit
        // normal goes through log / cos / sqrt, which a GPU may round one ulp differently
        check_close(zd.to(Device::cpu()), z, dt == kFloat32 ? Tol{2.4e-7, 1e-7} : Tol{1e-14, 1e-15});
        CHECK(g.offset() == g_cpu.offset());
      }
      (void)g_dev;
    }
  }
  // Dropout draws its mask from the same stream: the same elements are dropped.
  std::mt19937 rng(3);
  const Tensor x = random_tensor({64, 33}, kFloat32, rng);
  same_on_devices({x}, [](const std::vector<Tensor>& in) {
    Generator g(99);
    return dropout(in[0], 0.3, g);
  });
}

TEST_CASE("device: element-wise ops match the CPU for every layout") {
  note_skip();
  std::mt19937 rng(11);
  using U = Tensor (*)(const Tensor&);
  const std::vector<std::pair<const char*, U>> unary = {
      {"neg", tf::neg},   {"abs", tf::abs},   {"sign", tf::sign},       {"exp", tf::exp},   {"log", tf::log},
      {"sqrt", tf::sqrt}, {"tanh", tf::tanh}, {"sigmoid", tf::sigmoid}, {"relu", tf::relu}, {"step", tf::step},
      {"square", tf::square}, {"sin", tf::sin}, {"cos", tf::cos},     {"floor", tf::floor},     {"ceil", tf::ceil},
      {"round", tf::round},   {"tan", tf::tan},   {"asin", tf::asin},       {"acos", tf::acos}, {"atan", tf::atan},
      {"sinh", tf::sinh},     {"cosh", tf::cosh}, {"asinh", tf::asinh},     {"acosh", tf::acosh}, {"atanh", tf::atanh}};
  using B = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, B>> binary = {
      {"add", tf::add},         {"sub", tf::sub},          {"mul", tf::mul},        {"div", tf::div},
      {"maximum", tf::maximum}, {"minimum", tf::minimum},  {"pow", tf::pow},        {"equal", tf::equal},
      {"less", tf::less},       {"greater_equal", tf::greater_equal}, {"not_equal", tf::not_equal},
      {"atan2", tf::atan2},     {"floor_divide", tf::floor_divide},   {"mod", tf::mod}};
  for (Make how : kAllMakes) {
    for (DType dt : kNumericDTypes) {
      INFO(make_name(how) << " " << dtype_name(dt));
      const Shape shape = {5, 7, 3};
      const bool positive_only = false;
      const Tensor x = make_input(shape, dt, rng, how, positive_only ? 0.1 : -3, 3);
      const Tensor xp = make_input(shape, dt, rng, how, 1, 4);  // log, sqrt, pow, acosh
      const Tensor xu = make_input(shape, dt, rng, how, -0.99, 0.99);  // asin, acos, atanh
      const std::set<std::string> from_one = {"log", "sqrt", "acosh"}, unit = {"asin", "acos", "atanh"};
      const std::set<std::string> promoted = {"exp", "tanh", "sigmoid", "sin", "cos", "tan", "asin", "acos",
                                              "atan", "sinh", "cosh", "asinh", "acosh", "atanh"};
      for (const auto& [name, f] : unary) {
        INFO(name);
        const std::string n = name;
        const Tensor& in = from_one.count(n) ? xp : (unit.count(n) ? xu : x);
        same_on_devices({in}, [f = f](const std::vector<Tensor>& t) { return f(t[0]); },
                        is_floating(dt) || promoted.count(n) ? Tol{1e-6, 1e-6} : Tol{0, 0});
      }
      same_on_devices({x}, [](const std::vector<Tensor>& t) { return clip(t[0], -1.5, 2); });
      same_on_devices({xp}, [](const std::vector<Tensor>& t) { return pow(t[0], 1.5); }, {1e-6, 1e-6});
      same_on_devices({x}, [](const std::vector<Tensor>& t) { return t[0] * 2.0 - 1; });
      // broadcasting partners, every dtype pair promotes as on the CPU
      const Tensor row = make_input({7, 1}, kFloat32, rng, Make::Contiguous, 1, 3);
      const Tensor col = make_input({3}, dt, rng, Make::Contiguous, 1, 3);
      for (const auto& [name, f] : binary) {
        INFO(name);
        same_on_devices({x, row}, [f = f](const std::vector<Tensor>& t) { return f(t[0], t[1]); }, {1e-6, 1e-6});
        same_on_devices({x, col}, [f = f](const std::vector<Tensor>& t) { return f(t[0], t[1]); }, {1e-6, 1e-6});
      }
      same_on_devices({x > 0.0, x, row}, [](const std::vector<Tensor>& t) { return where(t[0], t[1], t[2]); });
      same_on_devices({x > 0.0, x < 1.0}, [](const std::vector<Tensor>& t) {
        return logical_or(logical_and(t[0], t[1]), logical_not(t[0]));
      });
      // casts between every pair of dtypes, from strided views
      for (DType to : kAllDTypes) {
        same_on_devices({x}, [to](const std::vector<Tensor>& t) { return t[0].astype(to); });
      }
      same_on_devices({x}, [](const std::vector<Tensor>& t) { return t[0].contiguous(); });
      same_on_devices({x}, [](const std::vector<Tensor>& t) { return t[0].reshape({-1}); });
    }
  }
}

TEST_CASE("device: floor_divide and mod match the CPU: signs, division by zero, the extremes, special values") {
  note_skip();
  // every sign pair, 0 and -1 divisors, INT_MIN and INT_MAX: [9, 1] with [8]
  const std::vector<std::int64_t> a = {-7, 7, -8, 8, 0, 1, -1, -2147483648LL, 2147483647}, b = {2, -2, 3, -3, 1, -1, 0, 7};
  for (DType dt : {kInt32, kInt64}) {
    INFO(dtype_name(dt));
    const Tensor ta = tensor(a, {9, 1}).astype(dt), tb = tensor(b, {8}).astype(dt);
    same_on_devices({ta, tb}, [](const std::vector<Tensor>& t) { return floor_divide(t[0], t[1]); });
    same_on_devices({ta, tb}, [](const std::vector<Tensor>& t) { return mod(t[0], t[1]); });
  }
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor fa = tensor({-7.0, 7.5, 0.0, -0.0, 1.0, -5.0, inf, nan}, {8, 1});
  const Tensor fb = tensor({2.0, -0.5, 0.0, -0.0, inf, -inf, nan, 0.1, -3.0}, {9});
  for (DType dt : kFloatDTypes) {
    INFO(dtype_name(dt));
    // exact, and 1 / result tells the signed zeros apart (+-inf)
    same_on_devices({fa.astype(dt), fb.astype(dt)}, [](const std::vector<Tensor>& t) { return floor_divide(t[0], t[1]); },
                    {0, 0});
    same_on_devices({fa.astype(dt), fb.astype(dt)}, [](const std::vector<Tensor>& t) { return mod(t[0], t[1]); }, {0, 0});
    same_on_devices({fa.astype(dt), fb.astype(dt)},
                    [](const std::vector<Tensor>& t) { return 1.0 / floor_divide(t[0], t[1]); }, {0, 0});
    same_on_devices({fa.astype(dt), fb.astype(dt)}, [](const std::vector<Tensor>& t) { return 1.0 / mod(t[0], t[1]); },
                    {0, 0});
  }
  // atan2's signed zeros and infinities, y [7, 1] with x [7]
  const Tensor s = tensor({0.0, -0.0, 1.0, -1.0, inf, -inf, nan}, {7});
  for (DType dt : kFloatDTypes) {
    same_on_devices({s.reshape({7, 1}).astype(dt), s.astype(dt)},
                    [](const std::vector<Tensor>& t) { return 1.0 / atan2(t[0], t[1]); }, {1e-7, 0});
  }
}

TEST_CASE("device: reductions, arg-reductions and softmax match the CPU") {
  note_skip();
  std::mt19937 rng(12);
  for (Make how : {Make::Contiguous, Make::Transposed, Make::Reversed, Make::Broadcast}) {
    for (DType dt : kNumericDTypes) {
      INFO(make_name(how) << " " << dtype_name(dt));
      const Tensor x = make_input({6, 129, 5}, dt, rng, how, -3, 3, /*integer_valued=*/true);
      const Tol tol = dt == kFloat32 ? kSumTol32 : default_tol(dt);
      for (const std::vector<std::int64_t>& axes :
           std::vector<std::vector<std::int64_t>>{{}, {0}, {1}, {2}, {0, 2}, {1, 2}}) {
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return sum(t[0], axes); }, tol);
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return max(t[0], axes, true); });
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return min(t[0], axes); });
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return mean(t[0], axes); }, kSumTol32);
      }
      for (std::int64_t axis : {0, 1, 2}) {
        // integer-valued inputs: ties happen, and the first index must win on every device
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return argmax(t[0], axis); });
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return argmin(t[0], axis); });
      }
    }
    for (DType dt : kFloatDTypes) {
      const Tensor x = make_input({4, 300, 3}, dt, rng, how, -20, 20);
      const Tol tol = dt == kFloat32 ? kSumTol32 : default_tol(dt);
      for (std::int64_t axis : {0, 1, 2}) {
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return softmax(t[0], axis); }, tol);
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return log_softmax(t[0], axis); }, tol);
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return logsumexp(t[0], {axis}); }, tol);
      }
    }
  }
  // a long row (many blocks per row on a GPU) and an empty reduction
  const Tensor big = random_tensor({3, 1 << 18}, kFloat64, rng);
  same_on_devices({big}, [](const std::vector<Tensor>& t) { return sum(t[0], {1}); }, {1e-11, 1e-11});
  same_on_devices({big}, [](const std::vector<Tensor>& t) { return softmax(t[0], 1); }, {1e-11, 1e-15});
  const Tensor empty_axis = zeros({3, 0, 2});
  same_on_devices({empty_axis}, [](const std::vector<Tensor>& t) { return sum(t[0], {1}); });
  // NaN propagates through max and wins argmax, as on the CPU
  const Tensor with_nan = tensor<float>({1, NAN, 3, 2, 5, -1}, {2, 3});
  same_on_devices({with_nan}, [](const std::vector<Tensor>& t) { return max(t[0], {1}); });
  same_on_devices({with_nan}, [](const std::vector<Tensor>& t) { return argmax(t[0], 1); });
}

TEST_CASE("device: prod, cumprod, cumsum's flags, cummax and cummin match the CPU", "[device][prod]") {
  note_skip();
  std::mt19937 rng(31);
  for (Make how : {Make::Contiguous, Make::Transposed, Make::Reversed, Make::Broadcast}) {
    for (DType dt : kNumericDTypes) {
      INFO(make_name(how) << " " << dtype_name(dt));
      // integers in [-3, 3] (their products wrap around, exactly on every device); floats in
      // [-1.5, 1.5], whose products of 129 stay finite
      const bool ints = !is_floating(dt);
      const Tensor x = make_input({6, 129, 5}, dt, rng, how, ints ? -3 : -1.5, ints ? 3 : 1.5, ints);
      const Tol tol = dt == kFloat32 ? kSumTol32 : default_tol(dt);
      for (const std::vector<std::int64_t>& axes :
           std::vector<std::vector<std::int64_t>>{{}, {0}, {1}, {2}, {0, 2}, {1, 2}}) {
        same_on_devices({x}, [&](const std::vector<Tensor>& t) { return prod(t[0], axes, axes.size() == 1); }, tol);
      }
      const Tensor c = x(Slice(none, 3), Slice(none, 9));  // [3, 9, 5]: every scan pass, small
      for (std::int64_t axis : {0, 1, -1}) {
        for (bool exclusive : {false, true}) {
          for (bool reverse : {false, true}) {
            same_on_devices({c}, [&](const std::vector<Tensor>& t) { return cumprod(t[0], axis, exclusive, reverse); }, tol);
            same_on_devices({c}, [&](const std::vector<Tensor>& t) { return cumsum(t[0], axis, exclusive, reverse); }, tol);
          }
        }
        same_on_devices({c}, [&](const std::vector<Tensor>& t) { return cummax(t[0], axis) + cummin(t[0], axis); });
      }
    }
  }
  // the empty reduction, NaN and inf, int64 wraparound
  same_on_devices({zeros({3, 0, 2})}, [](const std::vector<Tensor>& t) { return prod(t[0], {1}); });
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor special = tensor({inf, 0.0, 3.0, nan, 2.0, 1.0, -0.0, 5.0, -1.0}, {3, 3});
  same_on_devices({special}, [](const std::vector<Tensor>& t) { return prod(t[0], {1}); });
  same_on_devices({special}, [](const std::vector<Tensor>& t) { return cumprod(t[0], 1, true, true); });
  same_on_devices({special}, [](const std::vector<Tensor>& t) { return cummax(t[0], 0); });
  const std::int64_t k62 = std::int64_t(1) << 62;
  same_on_devices({tensor<std::int64_t>({k62, 4, 3, k62 + 1, 3, 5}, {2, 3})},
                  [](const std::vector<Tensor>& t) { return prod(t[0], {0}) + prod(t[0], {1}, true); });
  // the gradient with zeros in a group (one and two), and cumprod's
  const Tensor z = tensor({0.5, 0.0, -1.5, 2.0, 0.0, 1.25, 0.0, 3.0, -0.75, 1.5, 2.0, -1.0}, {3, 4});
  same_on_devices({z}, [](const std::vector<Tensor>& t) {
    GradientTape tape;
    tape.watch(t[0]);
    const Tensor y = sum(prod(t[0], {1}) * tensor({1.0, 2.0, 3.0}).to(t[0].device())) +
                     sum(cumprod(t[0], 0, true, true) * t[0]);
    return tape.gradient(y, t[0]);
  }, {1e-12, 1e-12});
}

TEST_CASE("device: argsort, sort and top_k match the CPU exactly (ties, NaN, every dtype)", "[device][sort]") {
  note_skip();
  std::mt19937 rng(15);
  for (Make how : {Make::Contiguous, Make::Transposed, Make::Reversed, Make::Broadcast}) {
    for (DType dt : kAllDTypes) {
      INFO(make_name(how) << " " << dtype_name(dt));
      // integer-valued: ties everywhere, and stability decides the order on every device
      const Tensor x = make_input({5, 37, 3}, dt, rng, how, -3, 3, /*integer_valued=*/true);
      for (std::int64_t axis : {0, 1, 2}) {
        for (bool descending : {false, true}) {
          same_on_devices({x}, [&](const std::vector<Tensor>& t) { return argsort(t[0], axis, descending); });
          same_on_devices({x}, [&](const std::vector<Tensor>& t) { return tf::sort(t[0], axis, descending); }, {0, 0});
        }
      }
      const Tensor rows = x.permute({0, 2, 1});  // [5, 3, 37]: top_k along the 37
      for (bool sorted : {true, false}) {
        same_on_devices({rows}, [&](const std::vector<Tensor>& t) { return top_k(t[0], 6, sorted).indices; });
        same_on_devices({rows}, [&](const std::vector<Tensor>& t) { return top_k(t[0], 6, sorted).values; }, {0, 0});
      }
    }
  }
  // NaNs, infinities and both zeros; a long row (many blocks on a GPU); size-0 and size-1 axes
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (DType dt : kFloatDTypes) {
    const Tensor special = tensor({1.0, nan, inf, -inf, -0.0, 0.0, nan, 1.0}, {2, 4}).astype(dt);
    for (bool descending : {false, true}) {
      for (std::int64_t axis : {0, 1}) {
        same_on_devices({special}, [&](const std::vector<Tensor>& t) { return argsort(t[0], axis, descending); });
      }
    }
    same_on_devices({special}, [](const std::vector<Tensor>& t) { return top_k(t[0], 3).indices; });
  }
  const Tensor long_row = random_tensor({2, 1500}, kFloat32, rng, -20, 20, /*integer_valued=*/true);
  same_on_devices({long_row}, [](const std::vector<Tensor>& t) { return argsort(t[0], 1, true); });
  same_on_devices({long_row}, [](const std::vector<Tensor>& t) { return argsort(t[0].transpose(), 0); });
  same_on_devices({zeros({3, 0, 2})}, [](const std::vector<Tensor>& t) { return argsort(t[0], 1); });
  same_on_devices({zeros({3, 1, 2})}, [](const std::vector<Tensor>& t) { return argsort(t[0], 1); });
  same_on_devices({zeros({3, 4, 0})}, [](const std::vector<Tensor>& t) { return argsort(t[0], 1); });
}

// Counts the copies from a device to the host (each one waits for the device) among the ops
// of the calling thread, passing every op on to the observer it replaced (a tape's).
struct HostCopies : tf::OpObserver {
  tf::OpObserver* next = tf::set_current_observer(this);
  int copies = 0;
  std::set<OpId> seen;
  ~HostCopies() override { tf::set_current_observer(next); }
  HostCopies(const HostCopies&) = delete;
  HostCopies& operator=(const HostCopies&) = delete;
  HostCopies() = default;
  void record(OpId op, tf::TensorList in, tf::TensorList out, const tf::OpAttrs& attrs) override {
    seen.insert(op);
    if (op == OpId::Copy && !in[0].device().is_cpu() && out[0].device().is_cpu()) ++copies;
    if (next != nullptr) next->record(op, in, out, attrs);
  }
  void before_write(const Tensor& target, const char* op) override {
    if (next != nullptr) next->before_write(target, op);
  }
};

TEST_CASE("device: indices known to lie in range are not copied back to the host (argsort's, a tape's)",
          "[device][sort][sync]") {
  note_skip();
  std::vector<Device> devices{Device::cpu()};
  for (const Device& d : other_devices()) devices.push_back(d);
  std::mt19937 rng(23);
  const Tensor x_cpu = random_tensor({4, 9}, kFloat64, rng, -3, 3);
  for (const Device& d : devices) {
    INFO("device " << d.str());
    const int checked = d.is_cpu() ? 0 : 1;  // a user's indices: copied to the host and checked
    const Tensor x = x_cpu.to(d);
    {
      HostCopies c;
      const Tensor s = tf::sort(x, 1);
      const TopK t = top_k(x, 3), u = top_k(x, 3, false);
      CHECK(c.seen.count(OpId::ArgSort) == 1);
      CHECK(c.seen.count(OpId::Gather) == 1);
      CHECK(c.copies == 0);
      check_close(s.to(Device::cpu()), tf::sort(x_cpu, 1), {0, 0});
      check_close(u.values.to(Device::cpu()), top_k(x_cpu, 3, false).values, {0, 0});
    }
    // take's gradient (a scatter_add of the saved indices) and scatter_add's (a take_along_axis)
    const Tensor idx = tensor<std::int64_t>({2, 0, 2}, {3}).to(d);
    const Tensor src = ones({2, 9}, kFloat64, d);
    GradientTape tape(TapeOptions{true});
    tape.watch(x);
    tape.watch(src);
    Tensor y, z;
    {
      HostCopies c;
      y = sum(take(x, idx, 0) * arange(9, kFloat64, d));
      z = sum(scatter_add(x, tensor<std::int64_t>({3, 1}, {2, 1}).to(d), src * 2.0, 0) * x);
      CHECK(c.copies == 2 * checked);
    }
    HostCopies c;
    const Tensor dx = tape.gradient(y, {x})[0];
    const Tensor dsrc = tape.gradient(z, {src})[0];
    CHECK(c.seen.count(OpId::ScatterAdd) == 1);
    CHECK(c.seen.count(OpId::Gather) == 1);
    CHECK(c.copies == 0);
    // worked by hand: rows 0 and 2 (twice) of x were taken, each times [0, 1, ..., 8]
    const std::vector<double> dx_v = dx.to_vector<double>(), dsrc_v = dsrc.to_vector<double>();
    for (std::int64_t j = 0; j < 9; ++j) {
      CHECK(dx_v[static_cast<std::size_t>(j)] == static_cast<double>(j));
      CHECK(dx_v[static_cast<std::size_t>(18 + j)] == 2.0 * static_cast<double>(j));
      CHECK(dx_v[static_cast<std::size_t>(9 + j)] == 0);
      // src row r was added (times 2) into x's row 3 or 1, then multiplied by that row of x
      CHECK(dsrc_v[static_cast<std::size_t>(j)] == 2 * x_cpu.to_vector<double>()[static_cast<std::size_t>(27 + j)]);
      CHECK(dsrc_v[static_cast<std::size_t>(9 + j)] == 2 * x_cpu.to_vector<double>()[static_cast<std::size_t>(9 + j)]);
    }
    // gather_nd checks its indices once (on the host), then takes the rows it computed unchecked
    {
      HostCopies g;
      const Tensor r = gather_nd(x, tensor<std::int64_t>({1, 2, 3, 8}, {2, 2}).to(d));
      CHECK(g.copies == checked);
      CHECK(r.to_vector<double>() == std::vector<double>{x_cpu.to_vector<double>()[11], x_cpu.to_vector<double>()[35]});
    }
  }
}

TEST_CASE("device: matmul matches the CPU (exact float32 unless TF32 is asked for)") {
  note_skip();
  REQUIRE_FALSE(tf::cuda::allow_tf32());
  std::mt19937 rng(13);
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {{{64, 96}, {96, 33}},  {{1, 5}, {5, 1}},        {{7}, {7, 4}},
                                   {{4, 7}, {7}},         {{3, 17, 9}, {9, 12}},   {{2, 1, 5, 6}, {3, 6, 4}},
                                   {{130, 257}, {257, 65}}, {{0, 4}, {4, 5}},      {{3, 0}, {0, 2}}};
  for (DType dt : kNumericDTypes) {
    const Tol tol = dt == kFloat32 ? kMatmulTol32 : dt == kFloat64 ? Tol{1e-12, 1e-12} : Tol{0, 0};
    for (const auto& c : cases) {
      INFO(dtype_name(dt) << " " << str(c.a) << " @ " << str(c.b));
      const Tensor a = random_tensor(c.a, dt, rng, -3, 3);
      const Tensor b = random_tensor(c.b, dt, rng, -3, 3);
      same_on_devices({a, b}, [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); }, tol);
    }
    // transposed and strided operands (cuBLAS's transpose flags, or a copy)
    const Tensor at = random_tensor({40, 30}, dt, rng).transpose();
    const Tensor bs = random_tensor({80, 50}, dt, rng)(Slice(none, none, 2), Slice(none, none, -1));
    INFO(dtype_name(dt) << " transposed @ strided");
    same_on_devices({at, bs}, [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); }, tol);
    same_on_devices({at}, [](const std::vector<Tensor>& t) { return matmul(t[0], t[0].transpose()); }, tol);
  }
}

TEST_CASE("device: joining, indexing and scatter match the CPU") {
  note_skip();
  std::mt19937 rng(14);
  for (DType dt : kAllDTypes) {
    INFO(dtype_name(dt));
    const Tensor x = make_input({6, 5, 4}, dt, rng, Make::Permuted);
    const Tensor y = make_input({6, 2, 4}, dt, rng, Make::Reversed);
    same_on_devices({x, y}, [](const std::vector<Tensor>& t) { return concat({t[0], t[1]}, 1); });
    same_on_devices({x, x}, [](const std::vector<Tensor>& t) { return stack({t[0], t[1]}, 2); });
    same_on_devices({x}, [](const std::vector<Tensor>& t) { return split(t[0], {1, 4}, 1)[1]; });
    same_on_devices({x}, [](const std::vector<Tensor>& t) { return t[0](Slice(1, none, 2), -1, Slice(none, none, -1)); });
    const Tensor idx = tensor<std::int64_t>({4, 0, 4, 2, 1, 1, 3}, {7});
    same_on_devices({x, idx}, [](const std::vector<Tensor>& t) { return take(t[0], t[1], 1); });
    const Tensor along = random_tensor({6, 3, 4}, kInt64, rng, 0, 4);
    same_on_devices({x, along}, [](const std::vector<Tensor>& t) { return take_along_axis(t[0], t[1], 1); });
    same_on_devices({x}, [](const std::vector<Tensor>& t) {
      return slice_scatter(t[0], {13, 5, 6}, {1, 0, 0}, {2, 1, 1});
    });
  }
  for (DType dt : kNumericDTypes) {
    INFO(dtype_name(dt));
    const Tensor base = random_tensor({5, 4}, dt, rng);
    const Tensor src = random_tensor({9, 4}, dt, rng);
    // duplicates accumulate (atomics on a GPU)
    const Tensor rows = random_tensor({9, 4}, kInt64, rng, 0, 4);
    same_on_devices({base, rows, src},
                    [](const std::vector<Tensor>& t) { return scatter_add(t[0], t[1], t[2], 0); },
                    dt == kFloat32 ? kSumTol32 : default_tol(dt));
    const Tensor labels = tensor<std::int64_t>({3, 0, 9, 9, 1}, {5});
    same_on_devices({labels}, [](const std::vector<Tensor>& t) { return one_hot(t[0], 10); });
    same_on_devices({random_tensor({5, 10}, dt, rng), labels},
                    [](const std::vector<Tensor>& t) { return gather(t[0], t[1]); });
  }
  // a bad index is caught before any kernel runs, on every device
  for (const Device& d : other_devices()) {
    const Tensor x = ones({3, 4}, kFloat32, d);
    CHECK_THROWS_AS(take(x, tensor<std::int64_t>({0, 4}, {2}, kInt64, d), 1), IndexError);
  }
}

TEST_CASE("device: convolution and pooling match the CPU") {
  note_skip();
  std::mt19937 rng(15);
  const Tensor x = random_tensor({2, 9, 8, 3}, kFloat32, rng);
  const Tensor w = random_tensor({3, 3, 3, 5}, kFloat32, rng);
  for (Padding p : {Padding::Valid, Padding::Same}) {
    for (std::int64_t stride : {1, 2}) {
      same_on_devices({x, w}, [&](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], stride, p); },
                      kMatmulTol32);
      same_on_devices({x}, [&](const std::vector<Tensor>& t) { return max_pool2d(t[0], 2, stride, p); });
      same_on_devices({x}, [&](const std::vector<Tensor>& t) { return avg_pool2d(t[0], 3, stride, p); }, kSumTol32);
    }
  }
  // the windows themselves, every numeric dtype (col2im adds in the same order on both devices)
  for (DType dt : kNumericDTypes) {
    INFO(dtype_name(dt));
    const Tensor image = make_input({2, 7, 6, 3}, dt, rng, Make::Permuted);
    same_on_devices({image}, [](const std::vector<Tensor>& t) { return im2col(t[0], 3, 2, 2, Padding::Same, -1.0); });
    const Tensor cols = make_input({2, 4, 3, 6, 3}, dt, rng, Make::Reversed);  // of [7, 6], as above
    same_on_devices({cols}, [](const std::vector<Tensor>& t) { return col2im(t[0], 7, 6, 3, 2, 2, Padding::Same); });
    // dilated windows (same padding: 7x6 windows spanning 5x3 pixels)
    same_on_devices({image}, [](const std::vector<Tensor>& t) { return im2col(t[0], 3, 2, 1, Padding::Same, -1.0, 2); });
    const Tensor dcols = make_input({2, 7, 6, 6, 3}, dt, rng, Make::Reversed);
    same_on_devices({dcols}, [](const std::vector<Tensor>& t) { return col2im(t[0], 7, 6, 3, 2, 1, Padding::Same, 2); });
    // max pooling's selection and its adjoint, overlapping windows, with ties (small integers)
    const Tensor ties = random_tensor({2, 7, 6, 3}, dt, rng, -2, 2, true);
    const Tensor g = make_input({2, 4, 3, 3}, dt, rng, Make::Transposed);
    same_on_devices({ties, image}, [](const std::vector<Tensor>& t) {
      return max_pool_select(t[0], t[1], 3, 2, Padding::Same);
    });
    same_on_devices({ties, g}, [](const std::vector<Tensor>& t) {
      return max_pool_scatter(t[0], t[1], 3, 2, Padding::Same);
    });
  }
}

TEST_CASE("device: in-place updates and assign from another device") {
  note_skip();
  std::mt19937 rng(16);
  const Tensor a = random_tensor({4, 6}, kFloat32, rng);
  const Tensor b = random_tensor({6}, kFloat32, rng);
  same_on_devices({a, b}, [](const std::vector<Tensor>& t) {
    Tensor c = t[0].clone();
    c.add_(t[1]).mul_(2.0).sub_(t[1] * t[1]);
    c(Slice(1, 3)).assign(t[1]);
    c.addcmul_(t[1], c.transpose().transpose(), -0.5);  // an operand sharing c's memory
    c(Slice(0, 2)).addcdiv_(t[0](Slice(2, 4)), t[1] * t[1] + 1.0, 3.0);
    return c;
  });
  for (const Device& d : other_devices()) {
    Tensor v = zeros({4, 6}, kFloat32, d);
    const auto version = v.version();
    v.assign(a);  // a lives on the CPU: copied over
    CHECK(v.version() == version + 1);
    CHECK(v.device() == d);
    check_close(v.to(Device::cpu()), a);
  }
}

TEST_CASE("device: the caching allocator reuses freed device memory") {
  note_skip();
  for (const Device& d : other_devices()) {
    tf::cuda::synchronize(d);
    empty_cache(d);  // nothing cached: the first buffer below is a fresh one
    const MemoryStats before = memory_stats(d);
    CHECK(before.cached_bytes == 0);
    {
      const Tensor t = empty({1 << 20}, kFloat32, d);
      const MemoryStats during = memory_stats(d);
      CHECK(during.current_bytes >= before.current_bytes + (std::size_t{4} << 20));
      CHECK(during.peak_bytes >= during.current_bytes);
    }
    const MemoryStats after = memory_stats(d);
    CHECK(after.current_bytes == before.current_bytes);
    CHECK(after.cached_bytes >= before.cached_bytes + (std::size_t{4} << 20));
    const Tensor again = empty({1 << 20}, kFloat32, d);
    CHECK(memory_stats(d).cache_hits == after.cache_hits + 1);
    empty_cache(d);
    CHECK(memory_stats(d).cached_bytes == 0);
  }
}

TEST_CASE("device: GradientTape gives the CPU's gradients on every device") {
  note_skip();
  std::mt19937 rng(17);
  const Tensor x0 = random_tensor({8, 5}, kFloat64, rng);
  const Tensor w0 = random_tensor({5, 3}, kFloat64, rng);
  const Tensor labels = tensor<std::int64_t>({0, 2, 1, 1, 0, 2, 2, 1}, {8});
  // d/dw and d/dx of a small network using most differentiable ops
  auto grads = [&](const std::vector<Tensor>& in) {
    Variable w(in[1]);
    Tensor x = in[0];
    GradientTape tape(TapeOptions{true});
    tape.watch(x);
    Tensor h = tanh(matmul(x, w)) + sigmoid(x(all, Slice(0, 3))) * 0.5;
    h = maximum(h, -0.2) / (abs(h) + 1.0) - exp(-h * h);
    Tensor loss = mean(-gather(log_softmax(h, 1), in[2])) + sum(sqrt(w * w + 1.0)) * 0.01 +
                  max(concat({h, relu(h)}, 1)) + mean(where(h > 0.0, h, h * 0.1));
    return concat({tape.gradient(loss, w).reshape({-1}), tape.gradient(loss, x).reshape({-1})}, 0);
  };
  same_on_devices({x0, w0, labels}, grads, {1e-10, 1e-12});
  // a gradient flows back across to(): the source stays on the CPU
  for (const Device& d : other_devices()) {
    const Tensor x = tensor<double>({1, 2, 3}, {3});
    GradientTape tape;
    tape.watch(x);
    const Tensor y = sum(x.to(d) * x.to(d));
    const Tensor g = tape.gradient(y, x);
    CHECK(g.device() == Device::cpu());
    check_values(g, {3}, {2, 4, 6});
  }
}

TEST_CASE("device: optimizers and fit give the CPU's training run") {
  note_skip();
  std::mt19937 rng(18);
  const Tensor x = random_tensor({96, 12}, kFloat32, rng);
  const Tensor y = random_tensor({96}, kInt64, rng, 0, 2);
  auto run = [&](const std::vector<Tensor>& in) {
    const Device d = in[0].device();
    Sequential model(Dense(16, "relu"), Dropout(0.2), Dense(3, "softmax"));
    model.set_seed(5);
    model.set_device(d);
    model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
    FitOptions fit;
    fit.epochs = 2;
    fit.batch_size = 32;
    fit.verbose = 0;
    fit.seed = 7;
    // the data stay on the CPU: fit copies each batch to the model's device
    const History h = model.fit(x, y, fit);
    for (const auto& w : model.weights()) CHECK(w.device() == d);
    const Tensor p = model.predict(x);
    CHECK(p.device() == d);
    std::vector<Tensor> parts = {p.reshape({-1}).astype(kFloat64),
                                 tensor<double>(h["loss"], {static_cast<std::int64_t>(h["loss"].size())}, kFloat64, d)};
    for (const auto& w : model.weights()) parts.push_back(w.reshape({-1}).astype(kFloat64));
    return concat(parts, 0);
  };
  same_on_devices({x}, run, {2e-4, 2e-5});
}

TEST_CASE("device: an optimizer's moving averages and gradient accumulation give the CPU's run") {
  note_skip();
  std::mt19937 rng(19);
  const Tensor x = random_tensor({64, 6}, kFloat32, rng);
  const Tensor y = random_tensor({64}, kInt64, rng, 0, 2);
  auto run = [&](const std::vector<Tensor>& in) {
    const Device d = in[0].device();
    Sequential model(Dense(8, "relu"), Dense(3, "softmax"));
    model.set_seed(6);
    model.set_device(d);
    optimizers::AdamOptions o;
    o.learning_rate = 0.01;
    o.use_ema = true;
    o.ema_momentum = 0.7;
    o.gradient_accumulation_steps = 2;
    model.compile(std::make_shared<optimizers::Adam>(o), "sparse_categorical_crossentropy");
    FitOptions fit;
    fit.epochs = 2;
    fit.batch_size = 16;
    fit.verbose = 0;
    fit.shuffle = false;
    model.fit(x, y, fit);  // ends with the averages as the weights
    std::vector<Tensor> parts;
    for (const auto& w : model.weights()) {
      CHECK(w.device() == d);
      parts.push_back(w.reshape({-1}).astype(kFloat64));
    }
    return concat(parts, 0);
  };
  same_on_devices({x}, run, {2e-5, 2e-6});
}

TEST_CASE("device: weights saved from a device load bit-exactly on the CPU") {
  note_skip();
  for (const Device& d : other_devices()) {
    Sequential on_device(Dense(4, "relu"), Dense(2));
    on_device.set_seed(3);
    on_device.set_device(d);
    on_device.build({-1, 5});
    const std::string path = "test_device_weights.safetensors";
    on_device.save_weights(path);
    Sequential on_cpu(Dense(4, "relu"), Dense(2));
    on_cpu.build({-1, 5});
    on_cpu.load_weights(path);
    const auto a = on_device.weights(), b = on_cpu.weights();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) check_close(b[i], a[i].to(Device::cpu()), {0, 0});
    std::remove(path.c_str());
  }
}

TEST_CASE("device: layers build on their device, and a built one stays there") {
  Dense dense(3);
  (void)dense(ones({2, 4}));
  CHECK(dense.device() == Device::cpu());
  CHECK(dense.kernel().device() == Device::cpu());
  CHECK_THROWS_AS(dense.set_device(Device::cuda(0)), ValueError);
  CHECK_NOTHROW(dense.set_device(Device::cpu()));
  Sequential model(Dense(2));
  CHECK(model.device() == Device::cpu());
  model.build({-1, 3});
  try {
    model.set_device(Device::cuda(0));
    FAIL("set_device after build did not throw");
  } catch (const ValueError& e) {
    const std::string what = e.what();
    CHECK(what.find("cuda:0") != std::string::npos);
    CHECK(what.find("already built on cpu") != std::string::npos);
  }
  note_skip();
  for (const Device& d : other_devices()) {
    Dense on(3);
    (void)on(ones({2, 4}, kFloat32, d));  // built where its first input lives
    CHECK(on.device() == d);
    CHECK(on.kernel().device() == d);
    CHECK_THROWS_AS(on(ones({2, 4})), DeviceError);  // a CPU input to device weights
  }
}

TEST_CASE("device: two CUDA devices: copies between them, and ops refuse to mix them") {
  if (tf::cuda::device_count() < 2) {
    WARN("skipped: needs two CUDA devices; " << tf::cuda::status());
    return;
  }
  std::mt19937 rng(19);
  const Tensor x = random_tensor({5, 7}, kFloat64, rng);
  const Tensor on0 = x.to(Device::cuda(0));
  const Tensor on1 = on0.to(Device::cuda(1));
  CHECK(on1.device() == Device::cuda(1));
  check_close(on1.to(Device::cpu()), x, {0, 0});
  check_close((on1 * 2.0).to(Device::cpu()), x * 2.0, {0, 0});  // computed on cuda:1
  try {
    (void)add(on0, on1);
    FAIL("add across two CUDA devices did not throw");
  } catch (const DeviceError& e) {
    const std::string what = e.what();
    CHECK(what.find("cuda:0") != std::string::npos);
    CHECK(what.find("cuda:1") != std::string::npos);
  }
  // a gradient crosses back from cuda:1 to cuda:0
  GradientTape tape;
  tape.watch(on0);
  const Tensor g = tape.gradient(sum(on0.to(Device::cuda(1)) * 3.0), on0);
  CHECK(g.device() == Device::cuda(0));
  check_close(g.to(Device::cpu()), full({5, 7}, 3.0, kFloat64), {0, 0});
  // memory is counted per device
  const std::size_t before = memory_stats(Device::cuda(1)).current_bytes;
  {
    const Tensor big = empty({1 << 16}, kFloat32, Device::cuda(1));
    CHECK(memory_stats(Device::cuda(1)).current_bytes >= before + (std::size_t{1} << 18));
  }
  CHECK(memory_stats(Device::cuda(1)).current_bytes == before);
}

TEST_CASE("device: integer overflow wraps and float -> int casts saturate exactly as on the CPU") {
  note_skip();
  constexpr std::int64_t kMax64 = std::numeric_limits<std::int64_t>::max();
  constexpr std::int32_t kMax32 = std::numeric_limits<std::int32_t>::max();
  constexpr std::int32_t kMin32 = std::numeric_limits<std::int32_t>::min();
  // f on the CPU, then on every other device: the same integers, bit for bit (compared as
  // int64, not through a double)
  auto same_ints = [](const std::vector<Tensor>& inputs, const Fn& f, const std::vector<std::int64_t>& want) {
    const Tensor expected = f(inputs);
    CHECK(expected.to_vector<std::int64_t>() == want);
    for (const Device& d : other_devices()) {
      INFO("device " << d.str());
      std::vector<Tensor> moved;
      for (const auto& t : inputs) moved.push_back(t.to(d));
      const Tensor actual = f(moved);
      CHECK(actual.device() == d);
      CHECK(actual.dtype() == expected.dtype());
      CHECK(actual.to(Device::cpu()).to_vector<std::int64_t>() == want);
    }
  };
  const Tensor i32 = tensor<std::int32_t>({kMax32, kMin32, 5}, {3});
  const Tensor i64 = tensor<std::int64_t>({kMax64, 3}, {2});
  same_ints({i32}, [](const std::vector<Tensor>& t) { return t[0] + t[0]; }, {-2, 0, 10});
  same_ints({i32}, [](const std::vector<Tensor>& t) { return -t[0]; }, {-kMax32, kMin32, -5});
  same_ints({i32}, [](const std::vector<Tensor>& t) { return abs(t[0]); }, {kMax32, kMin32, 5});
  same_ints({i64}, [](const std::vector<Tensor>& t) { return t[0] * t[0]; }, {1, 9});
  same_ints({i64}, [](const std::vector<Tensor>& t) { return sum(t[0]); }, {std::numeric_limits<std::int64_t>::min() + 2});
  same_ints({tensor<std::int32_t>({65537, 3}, {1, 2}), tensor<std::int32_t>({65537, 5}, {2, 1})},
            [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); }, {131088});
  same_ints({i32}, [](const std::vector<Tensor>& t) { return clip(t[0], 0, 1e10); }, {kMax32, 0, 5});
  same_ints({i32}, [](const std::vector<Tensor>& t) { return t[0] < std::int64_t(3000000000); }, {1, 1, 1});
  // a C++ integer above 2^53 reaches the device exactly
  same_ints({tensor<std::int64_t>({0, 1}, {2})},
            [](const std::vector<Tensor>& t) { return t[0] + ((std::int64_t(1) << 53) + 1); },
            {9007199254740993, 9007199254740994});
  // float -> int: saturated, NaN -> 0, from contiguous and reversed views
  const Tensor f = tensor<float>({NAN, INFINITY, -INFINITY, 3e9f, -3e9f, 2.7f, -2.7f}, {7});
  same_ints({f}, [](const std::vector<Tensor>& t) { return t[0].astype(kInt32); },
            {0, kMax32, kMin32, kMax32, kMin32, 2, -2});
  same_ints({f}, [](const std::vector<Tensor>& t) { return t[0](Slice(none, none, -1)).astype(kInt32); },
            {-2, 2, kMin32, kMax32, kMin32, kMax32, 0});
  same_ints({f.astype(kFloat64)}, [](const std::vector<Tensor>& t) { return t[0].astype(kInt64); },
            {0, kMax64, std::numeric_limits<std::int64_t>::min(), 3000000000, -3000000000, 2, -2});
}

TEST_CASE("device: NumPy's composites (tile, repeat, pad, flip, tril, triu, reduce_any, reduce_all, isnan, reduce_std, norm, "
          "cumsum) on every device",
          "[device][composites]") {
  note_skip();
  std::mt19937 rng(77);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (DType dt : kNumericDTypes) {
    INFO(dtype_name(dt));
    const Tensor x = make_input({3, 4}, dt, rng, Make::Transposed, -3, 3);
    const Tol t = is_floating(dt) ? Tol{1e-6, 1e-6} : Tol{0, 0};
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::tile(v[0], {2, 1, 3}); }, t);
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::repeat(v[0], 2, -1); }, t);
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::pad(v[0], {{1, 0}, {2, 3}}, 7); }, t);
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::flip(v[0], {0}); }, t);
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::tril(v[0], -1) + tf::triu(v[0], 2); }, t);
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::reduce_any(v[0], {1}); });
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::reduce_all(v[0], {0}, true); });
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::reduce_std(v[0], {1}, false, 1); }, {1e-5, 1e-5});
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::norm(v[0], 2, {0}); }, {1e-5, 1e-5});
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::cumsum(v[0], 1); }, {1e-5, 1e-5});
  }
  const Tensor special = tensor({1.0, nan, inf, -inf, -0.0, 2.5}, {6});
  same_on_devices({special}, [](const std::vector<Tensor>& v) { return tf::isnan(v[0]); });
  same_on_devices({special}, [](const std::vector<Tensor>& v) { return tf::isinf(v[0]); });
  same_on_devices({special}, [](const std::vector<Tensor>& v) { return tf::isfinite(v[0]); });
  same_on_devices({special}, [](const std::vector<Tensor>& v) { return tf::round(v[0]) + tf::floor(v[0]) + tf::ceil(v[0]); });
}

TEST_CASE("device: TensorFlow's index ops (nonzero, boolean_mask, gather_nd, scatter_nd, unsorted_segment_*) on every "
          "device",
          "[device][nd_index]") {
  note_skip();
  std::mt19937 rng(93);
  const Tensor idx = tensor<std::int64_t>({1, 2, 0, 0, 1, 2}, {3, 2});  // a duplicate row
  const Tensor batch_idx = tensor({2, 1, 0, 3, 2, 0, 1, 1}, {2, 2, 2});  // int32, batch_dims 1
  const Tensor mask = tensor<bool>({true, false, false, true, true, true, false, false, false, true, false, true},
                                   {3, 4});
  const Tensor ids = tensor({2, 0, -1, 2, 0});
  for (DType dt : kNumericDTypes) {
    INFO(dtype_name(dt));
    const Tensor x = make_input({2, 3, 4}, dt, rng, Make::Transposed, -3, 3);
    const Tensor u = make_input({3, 4}, dt, rng, Make::Contiguous, -3, 3);
    const Tensor d = make_input({5, 3}, dt, rng, Make::Contiguous, -3, 3);
    const Tol t = is_floating(dt) ? Tol{1e-6, 1e-6} : Tol{0, 0};
    same_on_devices({x}, [](const std::vector<Tensor>& v) { return tf::nonzero(v[0]); });
    same_on_devices({x, mask}, [](const std::vector<Tensor>& v) { return tf::boolean_mask(v[0], v[1], 1); }, t);
    same_on_devices({x, idx}, [](const std::vector<Tensor>& v) { return tf::gather_nd(v[0], v[1]); }, t);
    same_on_devices({x, batch_idx}, [](const std::vector<Tensor>& v) { return tf::gather_nd(v[0], v[1], 1); }, t);
    same_on_devices({idx, u}, [](const std::vector<Tensor>& v) { return tf::scatter_nd(v[0], v[1], {2, 3, 4}); }, t);
    same_on_devices({x, idx, u}, [](const std::vector<Tensor>& v) { return tf::tensor_scatter_nd_add(v[0], v[1], v[2]); },
                    t);
    same_on_devices({d, ids}, [](const std::vector<Tensor>& v) { return tf::unsorted_segment_sum(v[0], v[1], 4); }, t);
    same_on_devices({d, ids}, [](const std::vector<Tensor>& v) { return tf::unsorted_segment_max(v[0], v[1], 4); }, t);
    same_on_devices({d, ids}, [](const std::vector<Tensor>& v) { return tf::unsorted_segment_min(v[0], v[1], 4); }, t);
    // 64 rows into 3: duplicates race for the same element on a GPU, max / min by compare-and-swap
    std::vector<std::int64_t> rows(64 * 3);
    for (auto& r : rows) r = static_cast<std::int64_t>(rng() % 3);
    const Tensor many_idx = tensor(rows, {64, 3});
    const Tensor many = make_input({64, 3}, dt, rng, Make::Contiguous, -3, 3);
    const Tensor base = make_input({3, 3}, dt, rng, Make::Transposed, -3, 3);
    same_on_devices({base, many_idx, many}, [](const std::vector<Tensor>& v) { return tf::scatter_max(v[0], v[1], v[2], 0); }, t);
    same_on_devices({base, many_idx, many}, [](const std::vector<Tensor>& v) { return tf::scatter_min(v[0], v[1], v[2], 0); }, t);
    if (is_floating(dt)) {
      same_on_devices({d, ids}, [](const std::vector<Tensor>& v) { return tf::unsorted_segment_mean(v[0], v[1], 4); }, t);
    }
    // the index modes: rows computed on the device, out-of-range coordinates and ids included
    const Tensor far = tensor<std::int64_t>({1, 3, -1, 2, 5, -4, 0, -2}, {4, 2});
    const Tensor far_ids = tensor({0, 5, 0, -1, 3});
    const Tensor u4 = make_input({4, 4}, dt, rng, Make::Contiguous, -3, 3);
    for (IndexMode mode : {IndexMode::Wrap, IndexMode::Clip, IndexMode::Fill}) {
      INFO("mode " << static_cast<int>(mode));
      same_on_devices({x, far}, [mode](const std::vector<Tensor>& v) { return tf::gather_nd(v[0], v[1], 0, mode); }, t);
      same_on_devices({x, batch_idx}, [mode](const std::vector<Tensor>& v) { return tf::gather_nd(v[0], v[1] - 1, 1, mode); },
                      t);
      same_on_devices({far, u4}, [mode](const std::vector<Tensor>& v) { return tf::scatter_nd(v[0], v[1], {2, 3, 4}, mode); },
                      t);
      same_on_devices({d, far_ids}, [mode](const std::vector<Tensor>& v) { return tf::unsorted_segment_sum(v[0], v[1], 4, mode); },
                      t);
      same_on_devices({d, far_ids}, [mode](const std::vector<Tensor>& v) { return tf::unsorted_segment_min(v[0], v[1], 4, mode); },
                      t);
      if (is_floating(dt)) {
        same_on_devices({d, far_ids},
                        [mode](const std::vector<Tensor>& v) { return tf::unsorted_segment_mean(v[0], v[1], 4, mode); }, t);
      }
    }
  }
  // a bad index on a CUDA device is caught on the host, before any kernel
  for (const Device& dev : other_devices()) {
    CHECK_THROWS_AS(tf::gather_nd(zeros({2, 3}, kFloat32, dev), tensor({0, 3}, {1, 2}).to(dev)), IndexError);
    CHECK_THROWS_AS(tf::unsorted_segment_sum(zeros({2}, kFloat32, dev), tensor({0, 5}).to(dev), 2), IndexError);
  }
}

TEST_CASE("device: nonzero and boolean_mask read only the count on the host (coordinates made on the device)",
          "[device][nd_index][sync]") {
  note_skip();
  std::mt19937 rng(95);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<bool> sparse(3000);
  for (std::size_t i = 0; i < sparse.size(); ++i) sparse[i] = rng() % 7 == 0;
  const std::vector<Tensor> conditions = {
      tensor(sparse, {3000}, kBool),                          // cumsum across many blocks
      tensor(sparse, {10, 15, 20}, kBool).permute({2, 0, 1}),  // a view, rank 3
      tensor({0.0, 1.5, 0.0, nan, 0.0, -2.0}, {2, 3}),        // NaN counts as true
      zeros({4, 5}, kBool),                                   // none
      ones({2, 0, 3}, kBool),                                 // empty
      scalar(3),                                              // rank 0, true
      scalar(0),                                              // rank 0, false
      ones({3, 4}, kInt32),                                   // all
  };
  for (const Tensor& c : conditions) {
    INFO("condition " << str(c.shape()));
    same_on_devices({c}, [](const std::vector<Tensor>& v) { return tf::nonzero(v[0]); });
  }
  const Tensor x = make_input({10, 15, 20}, kFloat32, rng, Make::Contiguous, -3, 3);
  same_on_devices({x, tensor(sparse, {10, 15, 20}, kBool)},
                  [](const std::vector<Tensor>& v) { return tf::boolean_mask(v[0], v[1]); });
  same_on_devices({x, tensor(std::vector<bool>(sparse.begin(), sparse.begin() + 300), {15, 20}, kBool)},
                  [](const std::vector<Tensor>& v) { return tf::boolean_mask(v[0], v[1], 1); });
  for (const Device& dev : other_devices()) {
    const Tensor c = tensor(sparse, {3000}, kBool).to(dev);
    HostCopies copies;
    const Tensor w = tf::nonzero(c);
    CHECK(copies.copies == 1);  // the count: an int64 scalar
    CHECK(w.device() == dev);
  }
}

TEST_CASE("device: gather_nd, scatter_nd and the segment ops read no index on the host in wrap, clip and fill modes",
          "[device][nd_index][index_mode][sync]") {
  note_skip();
  for (const Device& dev : other_devices()) {
    const Tensor x = arange(24, kFloat32, dev).reshape({2, 3, 4});
    const Tensor idx = tensor<std::int64_t>({1, 3, -1, 2}, {2, 2}).to(dev);
    const Tensor ids = tensor({0, 5, -1, 1}).to(dev);
    const Tensor data = ones({4, 2}, kFloat32, dev);
    for (IndexMode mode : {IndexMode::Wrap, IndexMode::Clip, IndexMode::Fill}) {
      INFO("mode " << static_cast<int>(mode));
      Tensor g, s, seg, mean;
      {
        HostCopies c;
        g = tf::gather_nd(x, idx, 0, mode);
        s = tf::tensor_scatter_nd_add(x, idx, ones({2, 4}, kFloat32, dev), mode);
        seg = tf::unsorted_segment_sum(data, ids, 2, mode);
        mean = tf::unsorted_segment_mean(data, ids, 2, mode);
        CHECK(c.copies == 0);
      }
      CHECK(g.device() == dev);
      // [1, 3]: wrapped to [1, 0], clipped to [1, 2], filled 0; [-1, 2]: clipped to [0, 2], else [1, 2]
      const std::vector<float> row12 = {20, 21, 22, 23};
      std::vector<float> want = mode == IndexMode::Wrap   ? std::vector<float>{12, 13, 14, 15}
                                : mode == IndexMode::Clip ? row12
                                                          : std::vector<float>{0, 0, 0, 0};
      const std::vector<float> second = mode == IndexMode::Clip ? std::vector<float>{8, 9, 10, 11} : row12;
      want.insert(want.end(), second.begin(), second.end());
      CHECK(g.to_vector<float>() == want);
      CHECK(tf::sum(s).item<float>() == 276.0f + (mode == IndexMode::Fill ? 4 : 8));
      // id 5 into 2 segments: wrapped to 1, clipped to 1, dropped; -1 dropped
      const float seg1 = mode == IndexMode::Fill ? 1 : 2;
      CHECK(seg.to_vector<float>() == std::vector<float>{1, 1, seg1, seg1});
      CHECK(mean.to_vector<float>() == std::vector<float>{1, 1, 1, 1});
    }
  }
}

TEST_CASE("device: einsum (a composite of permute, reshape, slicing, sum, mul, matmul) on every device",
          "[device][einsum]") {
  note_skip();
  std::mt19937 rng(91);
  struct Case {
    const char* equation;
    std::vector<Shape> shapes;
  };
  const std::vector<Case> cases = {{"ij,jk->ik", {{3, 4}, {4, 2}}},
                                   {"bij,bkj->bik", {{2, 3, 4}, {2, 2, 4}}},
                                   {"i,j->ij", {{3}, {4}}},
                                   {"ii->i", {{3, 3}}},
                                   {"bii", {{2, 3, 3}}},
                                   {"ijk->kj", {{2, 3, 4}}},
                                   {"...ij,...jk->...ik", {{2, 1, 2, 3}, {3, 3, 2}}},
                                   {"bi,ij,bj->b", {{2, 3}, {3, 4}, {2, 4}}},
                                   {"bhqd,bhkd->bhqk", {{2, 2, 3, 4}, {2, 2, 2, 4}}}};
  for (DType dt : kNumericDTypes) {
    const Tol tol = dt == kFloat32 ? kMatmulTol32 : dt == kFloat64 ? Tol{1e-12, 1e-12} : Tol{0, 0};
    for (const auto& c : cases) {
      INFO(dtype_name(dt) << " " << c.equation);
      std::vector<Tensor> inputs;
      for (const auto& s : c.shapes) inputs.push_back(make_input(s, dt, rng, Make::Transposed, -3, 3));
      same_on_devices(inputs, [eq = c.equation](const std::vector<Tensor>& t) { return tf::einsum(eq, t); }, tol);
    }
  }
  // the gradient of a contraction and of a diagonal, through the tape on the device
  const Tensor a = make_input({3, 3}, kFloat64, rng, Make::Contiguous), b = make_input({3, 2}, kFloat64, rng, Make::Reversed);
  same_on_devices({a, b}, [](const std::vector<Tensor>& t) {
    GradientTape tape;
    tape.watch(t[0]);
    tape.watch(t[1]);
    const Tensor y = tf::einsum("ii,ij->j", t[0], t[1]) * tf::sum(tf::einsum("ij,jk->ik", t[0], t[1]), {0});
    const auto g = tape.gradient(y, {t[0], t[1]});
    return tf::concat({g[0].flatten(), g[1].flatten()});
  }, {1e-12, 1e-12});
}

TEST_CASE("device: GroupNormalization and UnitNormalization give the CPU's outputs and gradients", "[device][norm]") {
  note_skip();
  std::mt19937 rng(41);
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    // a transposed input: the grouping reshape copies it
    const Tensor x0 = make_input({2, 3, 4, 6}, dt, rng, Make::Transposed);
    const Tensor gamma0 = random_tensor({6}, kFloat32, rng, 0.5, 2), beta0 = random_tensor({6}, kFloat32, rng, -1, 1);
    const Tensor w_out = random_tensor({2, 3, 4, 6}, dt, rng, -1, 1);
    for (std::int64_t groups : {3, -1}) {
      INFO("groups " << groups);
      const auto run = [groups](const std::vector<Tensor>& in) {
        GroupNormalizationOptions o;
        o.groups = groups;
        GroupNormalization gn(o);
        gn(in[0]);  // builds on the input's device
        gn.set_weights({in[1], in[2]});
        const Tensor x = in[0];
        GradientTape tape;
        tape.watch(x);
        const Tensor y = UnitNormalization({1, 2})(gn(x));  // the unit norm over each channel's [3, 4] map
        const auto g = tape.gradient(sum(y * in[3]), std::vector<Tensor>{x, gn.gamma(), gn.beta()});
        std::vector<Tensor> flat = {y.reshape({-1}).astype(kFloat64)};
        for (const Tensor& t : g) flat.push_back(t.reshape({-1}).astype(kFloat64));
        return concat(flat, 0);
      };
      same_on_devices({x0, gamma0, beta0, w_out}, run, dt == kFloat64 ? Tol{1e-10, 1e-12} : Tol{1e-4, 1e-5});
    }
  }
}

TEST_CASE("device: Attention and AdditiveAttention give the CPU's outputs, scores and gradients", "[device][attention]") {
  note_skip();
  std::mt19937 rng(43);
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    const Tensor q = random_tensor({2, 3, 4}, dt, rng, -1, 1), v = random_tensor({2, 5, 3}, dt, rng, -1, 1);
    const Tensor k = random_tensor({2, 5, 4}, dt, rng, -1, 1), w_out = random_tensor({2, 3, 3}, dt, rng, -1, 1);
    const Tensor qm = tensor({1.0f, 0.0f, 1.0f, 1.0f, 1.0f, 1.0f}, {2, 3});
    const Tensor vm = tensor({1.0f, 1.0f, 0.0f, 1.0f, 1.0f, 1.0f, 0.0f, 1.0f, 1.0f, 0.0f}, {2, 5});
    for (const char* mode : {"dot", "concat", "additive"}) {
      INFO(mode);
      const auto run = [mode](const std::vector<Tensor>& in) {
        std::shared_ptr<Attention> att;
        if (std::string(mode) == "additive") {
          att = std::make_shared<AdditiveAttention>();
          att->set_seed(7);  // the scale's glorot_uniform draw, the same on every device
        } else {
          AttentionOptions o;
          o.use_scale = true;
          o.score_mode = mode;
          att = std::make_shared<Attention>(o);
        }
        AttentionCall args;
        args.key = in[2];
        args.query_mask = in[4];
        args.value_mask = in[5];
        args.use_causal_mask = true;
        (*att)(in[0], in[1], args);  // builds on the inputs' device
        for (auto& w : att->weights()) w.assign(w * 0.75);
        GradientTape tape;
        for (int i = 0; i < 3; ++i) tape.watch(in[static_cast<std::size_t>(i)]);
        const AttentionOutput r = att->with_scores(in[0], in[1], args);
        std::vector<Tensor> sources = {in[0], in[1], in[2]};
        for (const auto& w : att->weights()) sources.push_back(w);
        const auto g = tape.gradient(sum(r.output * in[3]), sources);
        std::vector<Tensor> flat = {r.output.reshape({-1}).astype(kFloat64), r.scores.reshape({-1}).astype(kFloat64)};
        for (const Tensor& t : g) flat.push_back(t.reshape({-1}).astype(kFloat64));
        return concat(flat, 0);
      };
      same_on_devices({q, v, k, w_out, qm, vm}, run, dt == kFloat64 ? Tol{1e-10, 1e-12} : Tol{1e-4, 1e-5});
    }
  }
}

TEST_CASE("device: the focal cross-entropies, Dice, Tversky, CTC and the loss reductions give the CPU's values and "
          "gradients",
          "[device][losses][ctc][reduction]") {
  note_skip();
  std::mt19937 rng(23);
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    const Tol tol = dt == kFloat64 ? Tol{1e-12, 1e-12} : Tol{1e-5, 1e-5};
    // a strided y_pred: the losses read views as they are
    const Tensor logits = make_input({3, 4}, dt, rng, Make::Transposed, -3, 3);
    const Tensor probs = make_input({3, 4}, dt, rng, Make::Strided, 0.05, 0.95);
    const Tensor y = tf::tensor({1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0}, {3, 4}, kFloat64).astype(dt);
    same_on_devices({y, logits, probs}, [](const std::vector<Tensor>& t) {
      GradientTape tape;
      tape.watch(t[1]);
      tape.watch(t[2]);
      tf::losses::BinaryFocalOptions b;
      b.from_logits = true;
      b.apply_class_balancing = true;
      b.label_smoothing = 0.1;
      tf::losses::CategoricalFocalOptions c;
      c.from_logits = true;
      const Tensor v = tf::concat({tf::losses::binary_focal_crossentropy(t[0], t[1], b),
                                   tf::losses::binary_focal_crossentropy(t[0], t[2]),
                                   tf::losses::categorical_focal_crossentropy(t[0], t[1], c),
                                   tf::losses::categorical_focal_crossentropy(t[0], t[2]),
                                   tf::losses::dice(t[0], t[2], {1}), tf::losses::tversky(t[0], t[2], 0.3, 0.7, {1})});
      const auto g = tape.gradient(tf::sum(v), {t[1], t[2]});
      return tf::concat({v, g[0].flatten(), g[1].flatten()});
    }, tol);
    // CTC: labels with a repeat, padding and an empty row, one logit_length short, an impossible alignment
    const Tensor x = make_input({4, 6, 5}, dt, rng, Make::Permuted, -2, 2);
    const Tensor labels = tf::tensor({1, 2, 2, 4, 0, 0, 0, 0, 3, 1, 4, 2}, {4, 3});
    const Tensor label_len = tf::tensor({3, 1, 0, 3}, {4});
    const Tensor logit_len = tf::tensor({6, 4, 6, 2}, {4});
    same_on_devices({x, labels, label_len, logit_len}, [](const std::vector<Tensor>& t) {
      GradientTape tape;
      tape.watch(t[0]);
      const Tensor v = tf::concat({tf::losses::ctc_loss(t[1], t[0], t[2], t[3]), tf::losses::ctc(t[1], t[0]),
                                   tf::losses::ctc_loss(t[1], t[0], t[2], t[3], 4)});
      return tf::concat({v, tape.gradient(tf::sum(v), t[0]).flatten()});
    }, tol);
    same_on_devices({x, logit_len}, [](const std::vector<Tensor>& t) {
      const auto d = tf::losses::ctc_greedy_decode(t[0], t[1]);
      return tf::concat({d.decoded.flatten().astype(kFloat64), d.scores.flatten().astype(kFloat64)});
    }, tol);
    // the reductions mean_with_sample_weight and none of a weighted, masked sequence: [3, 4] steps
    // of 5 classes from strided logits, the mask keeping 2, 4 and 1 steps
    const Tensor seq_logits = make_input({3, 4, 5}, dt, rng, Make::Permuted, -3, 3);
    const Tensor seq_labels = tf::tensor({0, 4, 2, 1, 3, 3, 0, 2, 1, 0, 4, 4}, {3, 4});
    const Tensor seq_mask = tf::tensor(std::vector<bool>{true, true, false, false, true, true, true, true, true, false,
                                                         false, false},
                                       {3, 4});
    const Tensor seq_sw = tf::tensor({1.5, 0.0, 2.0}, {3}, kFloat64).astype(dt);
    same_on_devices({seq_logits, seq_labels, seq_mask, seq_sw}, [](const std::vector<Tensor>& t) {
      GradientTape tape;
      tape.watch(t[0]);
      using tf::losses::Reduction;
      const tf::losses::SparseCategoricalCrossentropy mean_w(true, Reduction::MeanWithSampleWeight);
      const tf::losses::SparseCategoricalCrossentropy none(true, Reduction::None);
      const Tensor v =
          tf::concat({mean_w(t[1], t[0], t[3], t[2]).reshape({1}), none(t[1], t[0], t[3], t[2]).flatten()});
      return tf::concat({v, tape.gradient(tf::sum(v), t[0]).flatten()});
    }, tol);
  }
}

TEST_CASE("device: IndexMode wrap, clip and fill agree across devices and read no index back", "[device][index_mode][sync]") {
  note_skip();
  std::mt19937 rng(31);
  const IndexMode modes[] = {IndexMode::Wrap, IndexMode::Clip, IndexMode::Fill};
  // indices past both ends of axes of 3..5 (far past too), with duplicates
  const Tensor idx = tensor<std::int64_t>({-7, -5, -1, 0, 2, 4, 5, 9, -3, 1 << 20}, {10});
  const Tensor along = random_tensor({4, 6, 3}, kInt64, rng, -12, 12);
  const Tensor rows = random_tensor({9, 3}, kInt64, rng, -9, 9);
  for (DType dt : kNumericDTypes) {
    INFO(dtype_name(dt));
    const Tensor x = make_input({4, 5, 3}, dt, rng, Make::Permuted);
    const Tensor base = random_tensor({5, 3}, dt, rng);
    const Tensor src = random_tensor({9, 3}, dt, rng);
    for (const IndexMode m : modes) {
      INFO("mode " << static_cast<int>(m));
      same_on_devices({x, idx}, [m](const std::vector<Tensor>& t) { return take(t[0], t[1], 1, m); });
      same_on_devices({x, idx}, [m](const std::vector<Tensor>& t) { return take(t[0], t[1], -1, m); });
      same_on_devices({x, along}, [m](const std::vector<Tensor>& t) { return take_along_axis(t[0], t[1], 1, m); });
      same_on_devices({x, idx.astype(kInt32)(Slice(0, 4))},
                      [m](const std::vector<Tensor>& t) { return gather(t[0].reshape({4, 15}), t[1], m); });
      same_on_devices({base, rows, src}, [m](const std::vector<Tensor>& t) { return scatter_add(t[0], t[1], t[2], 0, m); },
                      dt == kFloat32 ? kSumTol32 : default_tol(dt));
    }
  }
  // no copy back to the host in any of them, nor in their gradients; raise copies each list once
  std::vector<Device> devices{Device::cpu()};
  for (const Device& d : other_devices()) devices.push_back(d);
  const Tensor x_cpu = random_tensor({4, 5}, kFloat64, rng, -3, 3);
  for (const Device& d : devices) {
    INFO("device " << d.str());
    const Tensor x = x_cpu.to(d), i = idx.to(d), a = along(Slice(0, 4), Slice(0, 3), 0).to(d);
    const Tensor r = rows(Slice(0, 4), Slice(0, 1)).to(d), s = ones({4, 5}, kFloat64, d);
    for (const IndexMode m : modes) {
      INFO("mode " << static_cast<int>(m));
      GradientTape tape(TapeOptions{true});
      tape.watch(x);
      tape.watch(s);
      HostCopies c;
      const Tensor y = sum(square(take(x, i, 1, m))) + sum(square(take_along_axis(x, a, 1, m))) +
                       sum(square(gather(x, i(Slice(0, 4)), m))) + sum(scatter_add(x, r, s, 0, m) * x);
      const auto g = tape.gradient(y, {x, s});
      CHECK(g[0].defined());
      CHECK(g[1].defined());
      CHECK(c.seen.count(OpId::Gather) == 1);
      CHECK(c.seen.count(OpId::ScatterAdd) == 1);
      CHECK(c.copies == 0);
    }
    HostCopies c;
    (void)take(x, tensor<std::int64_t>({0, 3}, {2}).to(d), 1);
    CHECK(c.copies == (d.is_cpu() ? 0 : 1));
  }
}

TEST_CASE("device: resizing, augmentation and dataset batches read no index back from the device",
          "[device][index_mode][sync]") {
  note_skip();
  std::mt19937 rng(37);
  const Tensor images = random_tensor({2, 5, 6, 3}, kFloat32, rng, 0, 1);
  const Tensor ex = random_tensor({7, 3}, kFloat32, rng, -1, 1), ey = random_tensor({7}, kInt64, rng, 0, 4);
  for (const Device& d : other_devices()) {
    INFO("device " << d.str());
    const Tensor img = images.to(d);
    {
      HostCopies c;
      Resizing bilinear(3, 8), nearest(7, 4, "nearest");
      const Tensor a = bilinear.call(img, false), b = nearest.call(img, false);
      CHECK(a.device() == d);
      CHECK(c.copies == 0);  // 6 before IndexMode (take's check): 2 per bilinear axis, 1 per nearest one
      check_close(a.to(Device::cpu()), Resizing(3, 8).call(images, false), kSumTol32);
      check_close(b.to(Device::cpu()), Resizing(7, 4, "nearest").call(images, false), {0, 0});
    }
    {
      HostCopies c;
      RandomRotation rotate(0.2);
      RandomFlip flip;
      const Tensor a = rotate.call(img, true), b = flip.call(img, true);
      CHECK(a.device() == d);
      CHECK(b.device() == d);
      CHECK(c.copies == 0);  // 2 before IndexMode: one take each
    }
    {
      HostCopies c;
      ArrayDataset ds(ex.to(d), ey.to(d), 3, BatchOptions{true, 5});
      const DataBatch b = ds.get_batch(1);
      BatchIterator it(ex.to(d), ey.to(d), 3, BatchOptions{true, 5});
      const Batch first = *it.begin();
      CHECK(b.inputs[0].device() == d);
      CHECK(first.x.device() == d);
      CHECK(c.copies == 0);  // 4 before IndexMode: one take of x and one of y each
      const DataBatch cpu = ArrayDataset(ex, ey, 3, BatchOptions{true, 5}).get_batch(1);
      check_close(b.inputs[0].to(Device::cpu()), cpu.inputs[0], {0, 0});
      check_close(b.targets[0].to(Device::cpu()), cpu.targets[0], {0, 0});
    }
    {
      // CTC reads its labels and lengths on the host (3 copies); its take_along_axis of the
      // states' classes no longer adds a fourth
      const Tensor x = random_tensor({2, 4, 3}, kFloat32, rng, -2, 2).to(d);
      const Tensor labels = tensor({1, 2, 2, 0}, {2, 2}).to(d), lengths = tensor({2, 1}, {2}).to(d);
      HostCopies c;
      const Tensor loss = tf::losses::ctc_loss(labels, x, lengths, tensor({4, 4}, {2}).to(d));
      CHECK(loss.device() == d);
      CHECK(c.copies == 3);
    }
  }
}

// A model and labelled data for the waiting cases: n examples, 3 classes.
struct WaitRun {
  Tensor x, y;
  std::shared_ptr<Sequential> model;
  WaitRun(std::int64_t n, const Device& d) {
    std::mt19937 rng(18);
    x = random_tensor({n, 12}, kFloat32, rng);
    y = random_tensor({n}, kInt64, rng, 0, 2);
    model = std::make_shared<Sequential>(Dense(16, "relu"), Dropout(0.2), Dense(3, "softmax"));
    model->set_seed(5);
    model->set_device(d);
    model->compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  }
  // host_waits() of a fit over the data (CPU batches of 32, copied to the device)
  std::uint64_t fit_waits(int epochs, std::vector<CallbackPtr> callbacks = {}) {
    FitOptions fit;
    fit.epochs = epochs;
    fit.batch_size = 32;
    fit.verbose = 0;
    fit.callbacks = std::move(callbacks);
    const std::uint64_t before = tf::cuda::host_waits();
    model->fit(x, y, fit);
    return tf::cuda::host_waits() - before;
  }
};

TEST_CASE("device: fit waits for the device once per epoch, not after each batch", "[device][sync][fit]") {
  note_skip();
  for (const Device& d : other_devices()) {
    INFO("device " << d.str());
    WaitRun run(384, d);  // 12 batches per epoch
    run.fit_waits(1);     // builds the layers and the optimizer's slots
    // Per epoch, at its end: the loss and the accuracy sums, and the labels' range check. A
    // batch's two uploads are staged without waiting; the emulator, whose streams run only
    // when the host waits, also waits once per 16 staged uploads (a real GPU finishes them
    // long before their buffer comes round again).
    const std::uint64_t uploads = 2 * 12 * 2;
    const std::uint64_t waits = run.fit_waits(2);
    CHECK(waits <= 2 * 3 + uploads / 16 + 1);
    CHECK(waits < 12);  // was 5 per batch: 2 uploads, the labels' check, the loss and the accuracy
    // a callback that reads each batch's logs makes fit read the metrics after each batch
    CHECK(run.fit_waits(1, {std::make_shared<callbacks::TerminateOnNaN>()}) >= 12);
    // an epoch-end callback reads the first batch's (its hook is the base one) and no other
    callbacks::EarlyStoppingOptions stop_options;
    stop_options.monitor = "loss";
    const auto early = std::make_shared<callbacks::EarlyStopping>(stop_options);
    CHECK(run.fit_waits(1, {early}) <= 3 + 3 + uploads / 2 / 16 + 1);
  }
}

TEST_CASE("device: a Mean metric adds up a device's batches there and reads them once", "[device][sync][metrics]") {
  note_skip();
  std::mt19937 rng(29);
  std::vector<Tensor> batches;
  for (int i = 0; i < 5; ++i) batches.push_back(random_tensor({7, 3}, kFloat32, rng, -2, 2));
  metrics::Mean on_cpu;
  for (const Tensor& b : batches) on_cpu.update_state(b);
  const Tensor w = random_tensor({7, 1}, kFloat64, rng, 0, 1);
  on_cpu.update_state(batches[0], w);
  on_cpu.update_state(sum(batches[1].astype(kFloat64)), 4.0);
  for (const Device& d : other_devices()) {
    INFO("device " << d.str());
    metrics::Mean m;
    m.update_state(0.5, 2.0);  // a host value first: both kinds add up
    tf::cuda::synchronize(d);
    const std::uint64_t before = tf::cuda::host_waits();
    for (const Tensor& b : batches) m.update_state(b.to(d));
    m.update_state(batches[0].to(d), w.to(d));
    m.update_state(sum(batches[1].astype(kFloat64).to(d)), 4.0);
    CHECK(tf::cuda::host_waits() == before);
    metrics::Mean expected;
    expected.update_state(0.5, 2.0);
    for (const Tensor& b : batches) expected.update_state(b);
    expected.update_state(batches[0], w);
    expected.update_state(sum(batches[1].astype(kFloat64)), 4.0);
    CHECK(m.result() == Approx(expected.result()).epsilon(1e-12));
    CHECK(m.result() != Approx(on_cpu.result()).epsilon(1e-12));  // the 0.5 x 2 counts
    m.reset_state();
    CHECK(m.result() == 0);
    m.update_state(batches[2].to(d));
    m.update_state(batches[3]);  // a CPU batch after a device one
    metrics::Mean two;
    two.update_state(batches[2]);
    two.update_state(batches[3]);
    CHECK(m.result() == Approx(two.result()).epsilon(1e-12));
  }
}

TEST_CASE("device: Precision, Recall, the confusion counts and AUC add up a device's batches there",
          "[device][sync][metrics]") {
  note_skip();
  std::mt19937 rng(37);
  std::vector<Tensor> trues, preds, weights;
  for (int i = 0; i < 4; ++i) {
    trues.push_back(random_tensor({9}, kInt64, rng, 0, 1));
    preds.push_back(random_tensor({9, 1}, kFloat32, rng, 0, 1));
    weights.push_back(random_tensor({9}, kFloat64, rng, 0, 2));
  }
  preds[0] = preds[0] * 0.0f + 0.3f;  // exactly at a threshold of 0.3: not above it (float32)
  std::vector<float> with_nan = preds[2].to_vector<float>();
  with_nan[4] = std::numeric_limits<float>::quiet_NaN();  // AUC: below every threshold
  preds[2] = tensor(with_nan, {9, 1});
  preds[3] = preds[3].astype(kFloat64);  // float64 scores: thresholds in float64
  auto make = [] {
    return std::vector<std::shared_ptr<metrics::Metric>>{
        std::make_shared<metrics::Precision>(),          std::make_shared<metrics::Recall>(0.3),
        std::make_shared<metrics::TruePositives>(0.3),  std::make_shared<metrics::FalsePositives>(),
        std::make_shared<metrics::TrueNegatives>(0.7), std::make_shared<metrics::FalseNegatives>(),
        std::make_shared<metrics::AUC>(),               std::make_shared<metrics::AUC>(7, metrics::AUC::Curve::PR),
        std::make_shared<metrics::AUC>(200, metrics::AUC::Curve::ROC, "auc_logits", true)};
  };
  const auto on_cpu = make();
  for (const auto& m : on_cpu) {
    for (int i = 0; i < 4; ++i) m->update_state(trues[i], preds[i], i % 2 ? weights[i] : Tensor());
  }
  for (const Device& d : other_devices()) {
    INFO("device " << d.str());
    const auto on_device = make();
    std::vector<Tensor> t_d, p_d, w_d;
    for (int i = 0; i < 4; ++i) {
      t_d.push_back(trues[i].to(d));
      p_d.push_back(preds[i].to(d));
      w_d.push_back(i % 2 ? weights[i].to(d) : Tensor());
    }
    tf::cuda::synchronize(d);
    const std::uint64_t before = tf::cuda::host_waits();
    for (const auto& m : on_device) {
      for (int i = 0; i < 4; ++i) m->update_state(t_d[i], p_d[i], w_d[i]);
    }
    CHECK(tf::cuda::host_waits() == before);
    for (std::size_t k = 0; k < on_cpu.size(); ++k) {
      INFO(on_cpu[k]->name());
      CHECK(on_device[k]->result() == Approx(on_cpu[k]->result()).epsilon(1e-12));
    }
    on_device[0]->reset_state();
    CHECK(on_device[0]->result() == 0);
  }
}

TEST_CASE("device: R2, F-beta and IoU add up a device's batches there", "[device][sync][metrics]") {
  note_skip();
  std::mt19937 rng(41);
  struct Batch {
    Tensor t, p, w;
  };
  // One kind of metric, its batches ([y_true, y_pred, sample_weight or undefined]) on the CPU
  // and on each device: the same result, and no wait while the device's are added.
  auto same = [&](const std::function<std::vector<std::shared_ptr<metrics::Metric>>()>& make,
                  const std::vector<Batch>& batches) {
    const auto on_cpu = make();
    for (const auto& m : on_cpu) {
      for (const Batch& b : batches) m->update_state(b.t, b.p, b.w);
    }
    for (const Device& d : other_devices()) {
      INFO("device " << d.str());
      std::vector<Batch> moved;
      for (const Batch& b : batches) moved.push_back({b.t.to(d), b.p.to(d), b.w.defined() ? b.w.to(d) : b.w});
      const auto on_device = make();
      tf::cuda::synchronize(d);
      const std::uint64_t before = tf::cuda::host_waits();
      for (const auto& m : on_device) {
        for (const Batch& b : moved) m->update_state(b.t, b.p, b.w);
      }
      CHECK(tf::cuda::host_waits() == before);
      for (std::size_t k = 0; k < on_cpu.size(); ++k) {
        INFO(on_cpu[k]->name());
        CHECK(on_device[k]->result() == Approx(on_cpu[k]->result()).epsilon(1e-12));
        CHECK(on_device[k]->result() != 0);
      }
      on_device[0]->reset_state();
      CHECK(on_device[0]->result() == 0);
    }
  };
  std::vector<Batch> regression, classes, ids;
  for (int i = 0; i < 3; ++i) {
    const Tensor t = random_tensor({8, 3}, kFloat32, rng, -2, 2);
    regression.push_back({t, t + random_tensor({8, 3}, kFloat32, rng, -0.5, 0.5),
                          i == 1 ? random_tensor({8}, kFloat64, rng, 0, 2) : Tensor()});
    const Tensor labels = random_tensor({10}, kInt64, rng, 0, 3);
    classes.push_back({one_hot(labels, 4).astype(kFloat32), softmax(random_tensor({10, 4}, kFloat32, rng, -2, 2)),
                       i == 2 ? random_tensor({10}, kFloat64, rng, 0, 2) : Tensor()});
    // ids: some outside [0, 4) and some of the ignored class 3
    ids.push_back({random_tensor({12}, kInt64, rng, -1, 4), random_tensor({12}, kInt64, rng, 0, 4),
                   i == 0 ? random_tensor({12}, kFloat64, rng, 0, 2) : Tensor()});
  }
  same([] {
    return std::vector<std::shared_ptr<metrics::Metric>>{
        std::make_shared<metrics::R2Score>(), std::make_shared<metrics::R2Score>("variance_weighted_average", 2)};
  }, regression);
  same([] {
    return std::vector<std::shared_ptr<metrics::Metric>>{
        std::make_shared<metrics::F1Score>(), std::make_shared<metrics::FBetaScore>("micro", 2.0, 0.3),
        std::make_shared<metrics::FBetaScore>("weighted", 0.5)};
  }, classes);
  same([] {
    metrics::IoUOptions ignore;
    ignore.ignore_class = 3;
    return std::vector<std::shared_ptr<metrics::Metric>>{
        std::make_shared<metrics::MeanIoU>(4), std::make_shared<metrics::IoU>(4, std::vector<std::int64_t>{0, 2}, ignore)};
  }, ids);
}

TEST_CASE("device: copies from the host are staged: they do not wait, and the source may change at once",
          "[device][sync]") {
  note_skip();
  std::mt19937 rng(31);
  for (const Device& d : other_devices()) {
    INFO("device " << d.str());
    tf::cuda::synchronize(d);
    std::vector<Tensor> originals, copies;
    const std::uint64_t before = tf::cuda::host_waits();
    // more uploads than staging buffers, of growing sizes: a buffer comes round again while
    // the emulator has not run the copy out of it yet (it waits for that one first)
    for (std::int64_t i = 0; i < 40; ++i) {
      const std::int64_t n = 1 + (i * i * 37) % 5000;
      Tensor src = random_tensor({n}, kFloat32, rng, -9, 9);
      originals.push_back(tensor(src.to_vector<float>(), {n}));
      copies.push_back(src.to(d));
      std::fill(src.data<float>(), src.data<float>() + n, -1.0f);  // the caller's buffer, reused at once
      if (i == 15) CHECK(tf::cuda::host_waits() == before);  // 16 buffers: no wait yet
    }
    // over 4 MiB: not staged, waits for its copy
    const Tensor big_src = random_tensor({(std::int64_t(4) << 20) / 4 + 3}, kFloat32, rng, -9, 9);
    const std::uint64_t before_big = tf::cuda::host_waits();
    const Tensor big = big_src.to(d);
    CHECK(tf::cuda::host_waits() == before_big + 1);
    for (std::size_t i = 0; i < copies.size(); ++i) {
      CHECK(copies[i].device() == d);
      check_close(copies[i].to(Device::cpu()), originals[i], {0, 0});
    }
    check_close(big.to(Device::cpu()), big_src, {0, 0});
  }
}

TEST_CASE("check_later: raised at once on the CPU, at the next read of a value on a device", "[device][check]") {
  note_skip();
  CHECK_NOTHROW(tf::check_later<IndexError>(Tensor(true), "never"));
  CHECK_THROWS_AS(tf::check_later<IndexError>(full({}, 0.0) > 0.5, "at once"), IndexError);
  CHECK_THROWS_WITH(tf::check_later<ValueError>(Tensor(false), "at once: value"), "at once: value");
  CHECK_THROWS_AS(tf::check_later<IndexError>(full({2}, 1.0) > 0.5, "rank 1"), ValueError);
  CHECK_THROWS_AS(tf::check_later<IndexError>(Tensor(), "undefined"), ValueError);
  for (const Device& d : other_devices()) {
    INFO("device " << d.str());
    const Tensor x = tensor<float>({1, 2, 3}, {3}).to(d);
    const std::uint64_t before = tf::cuda::host_waits();
    tf::check_later<IndexError>(reduce_all(x > 0.0f), "x: all positive");
    tf::check_later<IndexError>(reduce_all(x < 3.0f), "x: all below 3");
    tf::check_later<IndexError>(reduce_all(x < 9.0f), "x: all below 3");  // combined with the one before
    CHECK(tf::cuda::host_waits() == before);
    // an unrelated read raises the failed check once it is done
    CHECK_THROWS_WITH((x * 2.0f).to_vector<float>(), "x: all below 3");
    CHECK(sum(x).item<float>() == 6.0f);  // the checks were read: nothing pending now
    tf::check_later<ValueError>(reduce_all(x > 5.0f), "x: all above 5");
    CHECK_THROWS_AS(tf::cuda::synchronize(d), ValueError);
    CHECK_NOTHROW(tf::cuda::synchronize(d));
    // many messages: past 64 they are read (and raised) before the next one is kept
    const std::uint64_t before_many = tf::cuda::host_waits();
    for (int i = 0; i < 64; ++i) tf::check_later<IndexError>(reduce_all(x > 0.0f), "ok " + std::to_string(i));
    CHECK(tf::cuda::host_waits() == before_many);
    tf::check_later<IndexError>(reduce_all(x > 2.0f), "one more");
    CHECK(tf::cuda::host_waits() > before_many);  // the 64 were read (and held)
    CHECK_THROWS_WITH(x.to(Device::cpu()), "one more");
    // a sparse label outside the classes: the loss does not wait; the next read raises
    const Tensor y_pred = softmax(tensor<float>({0.1f, 0.2f, 0.3f, 1, 2, 3}, {2, 3})).to(d);
    const Tensor bad = tensor<std::int64_t>({0, 3}, {2}).to(d);
    const Tensor loss = losses::sparse_categorical_crossentropy(bad, y_pred);
    CHECK_THROWS_WITH(sum(loss).item<float>(),
                      Catch::Matchers::Contains("sparse_categorical_crossentropy: a label is outside [0, 3)") &&
                          Catch::Matchers::Contains("labels [2] on " + d.str()));
    CHECK_THROWS_WITH(losses::sparse_categorical_crossentropy(bad.to(Device::cpu()), y_pred.to(Device::cpu())),
                      Catch::Matchers::Contains("a label is outside [0, 3)") && Catch::Matchers::Contains("index 3"));
    // Embedding: the lookup does not wait; an index out of range raises at the next read
    Embedding emb(5, 2);
    emb.set_device(d);
    emb.build({-1, 3});
    const Tensor ids = tensor<std::int64_t>({0, 4, 2, 1, 3, 3}, {2, 3}).to(d);
    const std::uint64_t before_lookup = tf::cuda::host_waits();
    const Tensor rows = emb(ids);
    CHECK(tf::cuda::host_waits() == before_lookup);
    check_close(rows.to(Device::cpu()), take(emb.embeddings().to(Device::cpu()), ids.to(Device::cpu()).reshape({6}))
                                            .reshape({2, 3, 2}),
                {0, 0});
    const Tensor bad_ids = tensor<std::int64_t>({0, 5, 2}, {1, 3}).to(d);
    const Tensor bad_rows = emb(bad_ids);
    CHECK_THROWS_WITH(bad_rows.to(Device::cpu()), Catch::Matchers::Contains("indices must be in [0, 5)") &&
                                                      Catch::Matchers::Contains("[1, 3] on " + d.str()));
    // in fit: raised by the epoch's end, naming the loss
    WaitRun run(64, d);
    std::vector<std::int64_t> labels = run.y.to_vector<std::int64_t>();
    labels[40] = 5;
    run.y = tensor<std::int64_t>(labels, {64});
    CHECK_THROWS_WITH(run.fit_waits(1), Catch::Matchers::Contains("a label is outside [0, 3)"));
  }
}

