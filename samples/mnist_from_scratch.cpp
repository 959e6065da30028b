// "Reimplementing our first example from scratch" (Deep Learning with Python, chapter 2.5)
// with raw tapeflow ops, Variables and a GradientTape -- no layers, no Model -- on the real
// Fashion-MNIST from Debian's dataset-fashion-mnist: NaiveDense, NaiveSequential,
// BatchGenerator, one_training_step (SGD by hand with assign_sub) and fit, then the test accuracy.
// Usage: mnist_from_scratch [epochs (default 10, as the book)]
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <functional>
#include <utility>
#include <vector>

#include "sample_util.hpp"
#include "tapeflow/autodiff.hpp"

using namespace tapeflow;

namespace {

using ActivationFn = std::function<Tensor(const Tensor&)>;

// activation(inputs @ W + b). The book draws W uniform in [0, 0.1): on MNIST's dark digits
// (mean pixel 0.13) that trains, but on Fashion-MNIST (mean pixel 0.29) the all-positive
// weights push every example to the same saturated softmax and the loss stays near 10 with
// SGD at 1e-3. The same range centred on zero, [-0.05, 0.05), trains.
class NaiveDense {
 public:
  NaiveDense(std::int64_t input_size, std::int64_t output_size, ActivationFn activation, Generator& gen)
      : activation_(std::move(activation)),
        W_(uniform({input_size, output_size}, gen, -0.05, 0.05), "W"),
        b_(zeros({output_size}), "b") {}

  Tensor operator()(const Tensor& inputs) const { return activation_(matmul(inputs, W_) + b_); }
  std::vector<Variable> weights() const { return {W_, b_}; }

 private:
  ActivationFn activation_;
  Variable W_, b_;
};

class NaiveSequential {
 public:
  explicit NaiveSequential(std::vector<NaiveDense> layers) : layers_(std::move(layers)) {}

  Tensor operator()(const Tensor& inputs) const {
    Tensor x = inputs;
    for (const auto& layer : layers_) x = layer(x);
    return x;
  }
  std::vector<Variable> weights() const {
    std::vector<Variable> out;
    for (const auto& layer : layers_)
      for (const auto& w : layer.weights()) out.push_back(w);
    return out;
  }

 private:
  std::vector<NaiveDense> layers_;
};

// Hands out consecutive batches (views, no copy).
class BatchGenerator {
 public:
  BatchGenerator(Tensor images, Tensor labels, std::int64_t batch_size = 128)
      : images_(std::move(images)), labels_(std::move(labels)), batch_size_(batch_size) {
    num_batches = (images_.dim(0) + batch_size - 1) / batch_size;
  }
  std::pair<Tensor, Tensor> next() {
    const std::int64_t stop = std::min(index_ + batch_size_, images_.dim(0));
    auto batch = std::make_pair(images_(Slice(index_, stop)), labels_(Slice(index_, stop)));
    index_ += batch_size_;
    return batch;
  }
  std::int64_t num_batches;

 private:
  Tensor images_, labels_;
  std::int64_t batch_size_;
  std::int64_t index_ = 0;
};

// keras.losses.sparse_categorical_crossentropy on probabilities: -log p[label], p clipped as Keras.
Tensor sparse_categorical_crossentropy(const Tensor& labels, const Tensor& predictions) {
  return -log(clip(gather(predictions, labels), 1e-7, 1.0 - 1e-7));
}

constexpr double learning_rate = 1e-3;

void update_weights(const std::vector<Tensor>& gradients, std::vector<Variable>& weights) {
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i].assign_sub(gradients[i] * learning_rate);
}

Tensor one_training_step(const NaiveSequential& model, const Tensor& images_batch, const Tensor& labels_batch) {
  std::vector<Variable> weights = model.weights();
  std::vector<Tensor> gradients;
  Tensor average_loss;
  {
    GradientTape tape;
    const Tensor predictions = model(images_batch);
    const Tensor per_sample_losses = sparse_categorical_crossentropy(labels_batch, predictions);
    average_loss = mean(per_sample_losses);
    gradients = tape.gradient(average_loss, std::vector<Tensor>(weights.begin(), weights.end()));
  }
  update_weights(gradients, weights);
  return average_loss;
}

void fit(const NaiveSequential& model, const Tensor& images, const Tensor& labels, int epochs,
         std::int64_t batch_size = 128) {
  for (int epoch_counter = 0; epoch_counter < epochs; ++epoch_counter) {
    std::printf("Epoch %d\n", epoch_counter);
    BatchGenerator batch_generator(images, labels, batch_size);
    for (std::int64_t batch_counter = 0; batch_counter < batch_generator.num_batches; ++batch_counter) {
      const auto [images_batch, labels_batch] = batch_generator.next();
      const Tensor loss = one_training_step(model, images_batch, labels_batch);
      if (batch_counter % 100 == 0)
        std::printf("loss at batch %lld: %.2f\n", static_cast<long long>(batch_counter), loss.item<double>());
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  samples::Args args;
  if (!samples::parse_args(argc, argv, "mnist_from_scratch [epochs (default 10)]", {{"epochs", 10, INT_MAX}}, args,
                           /*device_option=*/false))
    return 2;
  const int epochs = static_cast<int>(args.counts[0]);
  try {
    const MnistData data = load_mnist();
    const Tensor train_images = data.train_images.reshape({60000, 28 * 28});
    const Tensor test_images = data.test_images.reshape({10000, 28 * 28});

    Generator gen(0);
    const NaiveSequential model({
        NaiveDense(
            28 * 28, 512, [](const Tensor& x) { return relu(x); }, gen),
        NaiveDense(
            512, 10, [](const Tensor& x) { return softmax(x); }, gen),
    });
    fit(model, train_images, data.train_labels, epochs, 128);

    const Tensor predictions = model(test_images);
    const Tensor predicted_labels = argmax(predictions, 1);
    const Tensor matches = equal(predicted_labels, data.test_labels);
    std::printf("accuracy: %.2f\n", mean(matches.astype(kFloat64)).item<double>());
  } catch (const Error& e) {
    std::fprintf(stderr, "mnist_from_scratch: %s\n", e.what());
    return 1;
  }
  return 0;
}
