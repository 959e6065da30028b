// The book's first convnet (Deep Learning with Python, chapter 8) with tapeflow's Keras API,
// on the real Fashion-MNIST from Debian's dataset-fashion-mnist:
//
//     inputs = keras.Input(shape=(28, 28, 1))
//     x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
//     x = layers.MaxPooling2D(pool_size=2)(x)
//     x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
//     x = layers.MaxPooling2D(pool_size=2)(x)
//     x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
//     x = layers.Flatten()(x)
//     outputs = layers.Dense(10, activation="softmax")(x)
//     model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
//     model.fit(train_images, train_labels, epochs=5, batch_size=64)
//
// Prints the test accuracy, the median seconds per epoch and the peak resident memory.
// Usage: convnet [epochs (default 5)] [training examples (default all 60000)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;

namespace {

// VmHWM of /proc/self/status: the peak resident set size, in MiB.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // the value is in kB
  }
  return 0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Records the wall time of each epoch.
class EpochTimer : public callbacks::Callback {
 public:
  std::vector<double> seconds;
  void on_epoch_begin(int, const Logs&) override { start_ = std::chrono::steady_clock::now(); }
  void on_epoch_end(int, const Logs&) override {
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::atoi(argv[1]) : 5;
  const std::int64_t subset = argc > 2 ? std::atoll(argv[2]) : 0;
  try {
    const MnistData data = load_mnist();
    const std::int64_t n =
        subset > 0 ? std::min<std::int64_t>(subset, data.train_images.dim(0)) : data.train_images.dim(0);
    // [n, 28, 28] -> [n, 28, 28, 1] (NHWC): views, already float32 in [0, 1]
    const Tensor train_images = data.train_images(Slice(0, n)).reshape({n, 28, 28, 1});
    const Tensor train_labels = data.train_labels(Slice(0, n));
    const Tensor test_images = data.test_images.reshape({-1, 28, 28, 1});

    Sequential model(Conv2D(32, 3, "relu"), MaxPooling2D(2), Conv2D(64, 3, "relu"), MaxPooling2D(2),
                     Conv2D(128, 3, "relu"), Flatten(), Dense(10, "softmax"));
    model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
    model.build({-1, 28, 28, 1});
    model.summary();

    auto timer = std::make_shared<EpochTimer>();
    FitOptions options;
    options.epochs = epochs;
    options.batch_size = 64;
    options.callbacks = {timer};
    model.fit(train_images, train_labels, options);

    const Logs test = model.evaluate(test_images, data.test_labels, 256);
    std::printf("test accuracy: %.4f\n", test.at("accuracy"));
    std::printf("test loss: %.4f\n", test.at("loss"));
    std::printf("seconds per epoch (median of %zu, %lld examples): %.3f\n", timer->seconds.size(),
                static_cast<long long>(n), median(timer->seconds));
    std::printf("peak RSS: %.0f MiB\n", peak_rss_mib());
  } catch (const Error& e) {
    std::fprintf(stderr, "convnet: %s\n", e.what());
    return 1;
  }
  return 0;
}
