// The tensor section of "Deep Learning with Python" (chapter 2, "The mathematical building
// blocks of neural networks"), with tapeflow in place of NumPy and the real Fashion-MNIST
// read from Debian's dataset-fashion-mnist:
//   ranks and shapes, slicing an image, batches, element-wise ops, broadcasting, the tensor
//   product, reshaping, and a timed naive loop vs tapeflow's vectorised relu and add.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tapeflow/core.hpp"

using namespace tapeflow;
using Clock = std::chrono::steady_clock;

namespace {

const char* const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void section(const char* title) { fmt::print("\n=== {}\n", title); }

// An image [rows, cols] of values in [0, 1] as text, darkest to brightest. Two characters
// per pixel because a terminal cell is about twice as tall as it is wide.
void print_image(const Tensor& image) {
  static const std::string shades = " .:-=+*#%@";
  const std::vector<float> pixels = image.to_vector<float>();
  const std::int64_t rows = image.dim(0), cols = image.dim(1);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::string line = "  |";
    for (std::int64_t c = 0; c < cols; ++c) {
      const auto level = std::min<std::size_t>(shades.size() - 1, static_cast<std::size_t>(pixels[r * cols + c] * 10));
      line.append(2, shades[level]);
    }
    fmt::print("{}|\n", line);
  }
}

// --- the book's naive element-wise ops: one plain loop over the raw buffers ---
void naive_relu(const float* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] > 0.f ? x[i] : 0.f;
}

void naive_add(const float* x, const float* y, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] + y[i];
}

void naive_copy(const float* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i];
}

// x [rows, cols] + y [cols], the book's naive_add_matrix_and_vector.
std::vector<float> naive_add_matrix_and_vector(const Tensor& x, const Tensor& y) {
  std::vector<float> out = x.to_vector<float>();
  const std::vector<float> yv = y.to_vector<float>();
  const std::size_t cols = yv.size();
  for (std::size_t i = 0; i < out.size(); ++i) out[i] += yv[i % cols];
  return out;
}

float naive_vector_dot(const Tensor& x, const Tensor& y) {
  const std::vector<float> xv = x.to_vector<float>(), yv = y.to_vector<float>();
  float z = 0;
  for (std::size_t i = 0; i < xv.size(); ++i) z += xv[i] * yv[i];
  return z;
}

// Median of `runs` timings after one warm-up run (page faults, caches, thread start-up).
template <class F>
double median_seconds(F&& f, int runs = 5) {
  f();
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    f();
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

bool same_values(const Tensor& a, const float* b) {
  const Tensor c = a.contiguous();
  return std::equal(c.data<float>(), c.data<float>() + c.size(), b);
}

}  // namespace

int main() {
  const auto start = Clock::now();

  section("2.2.1-2.2.4 Scalars, vectors, matrices and rank-3 tensors");
  const Tensor x0 = scalar(12, kInt64);
  fmt::print("x = {}\nx.rank() = {}\n\n", x0, x0.rank());
  const Tensor x1 = tensor({12, 3, 6, 14, 7});
  fmt::print("x = {}\nx.rank() = {}  (a 5-dimensional vector: one axis of 5 entries)\n\n", x1, x1.rank());
  const Tensor x2 = tensor({5, 78, 2, 34, 0, 6, 79, 3, 35, 1, 7, 80, 4, 36, 2}, {3, 5});
  fmt::print("x = {}\nx.rank() = {}\n\n", x2, x2.rank());
  const Tensor x3 = stack({x2, x2, x2});
  fmt::print("x = {}\nx.rank() = {}\n", x3, x3.rank());

  section("2.2.6 Key attributes: Fashion-MNIST");
  const auto load_start = Clock::now();
  MnistData mnist;
  try {
    mnist = load_mnist();
  } catch (const IOError& e) {
    fmt::print(stderr, "{}\nInstall Debian's dataset-fashion-mnist package (see README).\n", e.what());
    return 1;
  }
  const Tensor& train_images = mnist.train_images;
  const Tensor& train_labels = mnist.train_labels;
  fmt::print("load_mnist(\"{}\") took {:.2f} s\n", kFashionMnistDir, seconds_since(load_start));
  fmt::print("train_images.rank()  = {}\n", train_images.rank());
  fmt::print("train_images.shape() = {}\n", shape_str(train_images.shape()));
  // The book's images are uint8 0..255; load_mnist scales them to float32 in [0, 1] already.
  fmt::print("train_images.dtype() = {}\n", dtype_name(train_images.dtype()));
  fmt::print("train_labels.shape() = {}, dtype {}\n", shape_str(train_labels.shape()),
             dtype_name(train_labels.dtype()));

  section("Displaying the fifth image: digit = train_images[4]");
  const Tensor digit = train_images[4];
  const auto label = train_labels[4].item<std::int64_t>();
  fmt::print("digit.shape() = {}, train_labels[4] = {} ({})\n", shape_str(digit.shape()), label,
             kClassNames[label]);
  print_image(digit);

  section("2.2.7 Manipulating tensors: slicing");
  const Tensor my_slice = train_images(Slice(10, 100));
  fmt::print("train_images[10:100]              -> {}\n", shape_str(my_slice.shape()));
  fmt::print("train_images[10:100, :, :]        -> {}\n", shape_str(train_images(Slice(10, 100), all, all).shape()));
  fmt::print("train_images[10:100, 0:28, 0:28]  -> {}\n",
             shape_str(train_images(Slice(10, 100), Slice(0, 28), Slice(0, 28)).shape()));
  const Tensor bottom_right = train_images(all, Slice(14, none), Slice(14, none));
  fmt::print("train_images[:, 14:, 14:]         -> {}\n", shape_str(bottom_right.shape()));
  const Tensor centre = train_images(all, Slice(7, -7), Slice(7, -7));
  fmt::print("train_images[:, 7:-7, 7:-7]       -> {}\n", shape_str(centre.shape()));
  // Slices are views: no pixel was copied, and the crop of image 4 is part of the same memory.
  fmt::print("centre crop of image 4 (a view, storage shared: {}):\n",
             centre.storage() == train_images.storage() ? "yes" : "no");
  print_image(centre[4]);

  section("2.2.8 Data batches");
  fmt::print("batch = train_images[:128]        -> {}\n", shape_str(train_images(Slice(none, 128)).shape()));
  fmt::print("batch = train_images[128:256]     -> {}\n", shape_str(train_images(Slice(128, 256)).shape()));
  const std::int64_t n = 3;
  const Tensor batch = train_images(Slice(128 * n, 128 * (n + 1)));
  fmt::print("batch = train_images[128*3:128*4] -> {}\n", shape_str(batch.shape()));
  fmt::print("its labels: {}\n", train_labels(Slice(128 * n, 128 * (n + 1))));
  const auto batches = (train_images.dim(0) + 127) / 128;
  fmt::print("an epoch of batch size 128 has {} batches\n", batches);

  section("2.3.2 Broadcasting");
  Generator gen(42);
  const Tensor x = uniform({32, 10}, gen);
  const Tensor y = uniform({10}, gen);
  const Tensor z = x + y;  // y [10] is repeated along a new first axis of 32
  fmt::print("x {} + y {} -> {}; equal to the naive loop: {}\n", shape_str(x.shape()), shape_str(y.shape()),
             shape_str(z.shape()), z.to_vector<float>() == naive_add_matrix_and_vector(x, y) ? "yes" : "NO");
  const Tensor big = uniform({64, 3, 32, 10}, gen);
  fmt::print("maximum(x {}, y {}) -> {}\n", shape_str(big.shape()), shape_str(x.shape()),
             shape_str(maximum(big, x).shape()));

  section("2.3.3 Tensor product");
  const Tensor u = uniform({32}, gen), v = uniform({32}, gen);
  fmt::print("dot(x [32], y [32]) = {} (naive loop: {:.4f})\n", dot(u, v), naive_vector_dot(u, v));
  const Tensor a = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  const Tensor b = tensor({1.f, 0.f, 0.f, 1.f, 1.f, 1.f}, {3, 2});
  fmt::print("a = {}\nb = {}\nmatmul(a, b) = {}\n", a, b, matmul(a, b));
  // A dense layer's product on one batch: [128, 784] @ [784, 10] -> [128, 10].
  const Tensor w = normal({784, 10}, gen, 0, 0.05);
  fmt::print("batch.reshape([128, 784]) @ w [784, 10] -> {}\n",
             shape_str(matmul(batch.reshape({128, 28 * 28}), w).shape()));

  section("2.3.4 Tensor reshaping");
  fmt::print("train_images.reshape([60000, 784]) -> {}\n",
             shape_str(train_images.reshape({60000, 28 * 28}).shape()));
  const Tensor r = tensor({0.f, 1.f, 2.f, 3.f, 4.f, 5.f}, {3, 2});
  fmt::print("x = {}\nx.reshape([6, 1]) = {}\nx.reshape([2, 3]) = {}\n", r, r.reshape({6, 1}), r.reshape({2, 3}));
  fmt::print("zeros([300, 20]).transpose() -> {}\n", shape_str(zeros({300, 20}).transpose().shape()));

  section("2.3.1 Element-wise operations: naive loops vs tapeflow on 16M float32");
  const std::int64_t size = std::int64_t{1} << 24;
  const auto count = static_cast<std::size_t>(size);
  const Tensor xs = uniform({size}, gen, -1, 1);
  const Tensor ys = uniform({size}, gen, -1, 1);
  const Tensor out = empty({size});
  const float* xp = xs.data<float>();
  const float* yp = ys.data<float>();
  float* op = out.data<float>();

  // Check the vectorised results against the naive ones before timing anything.
  naive_relu(xp, op, count);
  const bool relu_ok = same_values(relu(xs), op);
  naive_add(xp, yp, op, count);
  const bool add_ok = same_values(add(xs, ys), op);
  fmt::print("relu(x) equals naive_relu(x): {}; add(x, y) equals naive_add(x, y): {}\n", relu_ok ? "yes" : "NO",
             add_ok ? "yes" : "NO");
  if (!relu_ok || !add_ok) return 1;

  // Bytes read + written per call: a copy and relu read one tensor and write one, add reads two.
  const double mib = 1 << 20;
  const double bytes2 = 2.0 * count * sizeof(float), bytes3 = 3.0 * count * sizeof(float);
  const double t_copy = median_seconds([&] { (void)xs.clone(); });
  const double t_naive_copy = median_seconds([&] { naive_copy(xp, op, count); });
  const double t_naive_relu = median_seconds([&] { naive_relu(xp, op, count); });
  const double t_relu = median_seconds([&] { (void)relu(xs); });
  const double t_naive_add = median_seconds([&] { naive_add(xp, yp, op, count); });
  const double t_add = median_seconds([&] { (void)add(xs, ys); });

  const double copy_gbs = bytes2 / t_copy / 1e9;
  fmt::print("{} float32 ({:.0f} MiB per tensor); median of 5 runs after a warm-up;\n", size,
             count * sizeof(float) / mib);
  fmt::print("GB/s = (bytes read + bytes written) / time; 'of copy' is the fraction of x.clone()'s GB/s\n\n");
  fmt::print("  {:<5} {:<16} {:>9} {:>8} {:>8}\n", "op", "implementation", "time ms", "GB/s", "of copy");
  const auto row = [&](const char* op_name, const char* impl, double seconds, double bytes) {
    const double gbs = bytes / seconds / 1e9;
    fmt::print("  {:<5} {:<16} {:>9.2f} {:>8.1f} {:>8.2f}\n", op_name, impl, seconds * 1e3, gbs, gbs / copy_gbs);
  };
  row("copy", "x.clone()", t_copy, bytes2);
  row("copy", "naive loop", t_naive_copy, bytes2);
  row("relu", "naive loop", t_naive_relu, bytes2);
  row("relu", "tapeflow::relu", t_relu, bytes2);
  row("add", "naive loop", t_naive_add, bytes3);
  row("add", "tapeflow::add", t_add, bytes3);

  fmt::print("\nrelu: tapeflow {:.1f}x the naive loop; add: {:.1f}x. Total time {:.1f} s.\n",
             t_naive_relu / t_relu, t_naive_add / t_add, seconds_since(start));
  return 0;
}
