// The book's first network (Deep Learning with Python, chapter 2) with tapeflow's Keras API,
// on the real Fashion-MNIST from Debian's dataset-fashion-mnist:
//
//     model = keras.Sequential([layers.Dense(512, activation="relu"),
//                               layers.Dense(10, activation="softmax")])
//     model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
//     model.fit(train_images, train_labels, epochs=5, batch_size=128)
//
// Prints the test accuracy, the median seconds per epoch and the peak resident memory.
// Usage: mnist_keras [epochs (default 5)]
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
  try {
    const MnistData data = load_mnist();
    // [60000, 28, 28] -> [60000, 784]: a view, already float32 in [0, 1]
    const Tensor train_images = data.train_images.reshape({-1, 28 * 28});
    const Tensor test_images = data.test_images.reshape({-1, 28 * 28});

    Sequential model(Dense(512, "relu"), Dense(10, "softmax"));
    model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
    model.build({-1, 28 * 28});
    model.summary();

    auto timer = std::make_shared<EpochTimer>();
    FitOptions options;
    options.epochs = epochs;
    options.batch_size = 128;
    options.callbacks = {timer};
    model.fit(train_images, data.train_labels, options);

    const Logs test = model.evaluate(test_images, data.test_labels, 128);
    std::printf("test accuracy: %.4f\n", test.at("accuracy"));
    std::printf("test loss: %.4f\n", test.at("loss"));
    std::printf("seconds per epoch (median of %zu): %.3f\n", timer->seconds.size(), median(timer->seconds));
    std::printf("peak RSS: %.0f MiB\n", peak_rss_mib());
  } catch (const Error& e) {
    std::fprintf(stderr, "mnist_keras: %s\n", e.what());
    return 1;
  }
  return 0;
}
