#pragma once
/// Keras 3's PyDataset in C++: a source of batches for Model::fit, evaluate and predict, for
/// data that does not fit in memory, batches made on the fly (augmentation, decoding) and
/// custom batching; plus adapters from arrays and from a generator function.
#include <cstdint>
#include <functional>
#include <vector>

#include "tapeflow/data.hpp"
#include "tapeflow/tensor.hpp"

namespace tapeflow {

/// One batch, Keras's (x, y, sample_weight) tuple: a tensor per model input and per output,
/// each [batch, ...] with the same batch size, and optional per-example weights [batch].
struct DataBatch {
  std::vector<Tensor> inputs;
  /// May be empty: predict ignores targets, and a custom train_step may do without labels.
  std::vector<Tensor> targets;
  /// Keras's sample_weight: the batch's loss is sum(loss * w) / batch (undefined: none).
  Tensor sample_weight;
};

/// A sequence of batches, as Keras 3's keras.utils.PyDataset (Keras's Sequence):
///
///     class Images : public Dataset {
///      public:
///       std::int64_t num_batches() const override { return (n_ + 63) / 64; }
///       DataBatch get_batch(std::int64_t index) override {
///         Tensor x = load_rows(index * 64, 64);    // read from disk, decode, augment...
///         return {{x}, {labels_for(index)}};
///       }
///     };
///     Images train;
///     model.fit(train, options);
///
/// Model::fit asks for the batches 0 .. num_batches() - 1 in order, each once per pass, and
/// calls on_epoch_end() at the end of every epoch. The batches belong to the model: a
/// train_step may change them in place.
///
/// Where Keras 3.15 differs (checked with keras.utils.PyDataset and Python generators):
/// - Keras's fit(shuffle=True) shuffles a PyDataset's batch indices; fit never reorders a
///   Dataset's: the Dataset owns its order (ArrayDataset shuffles its rows with its own seed),
///   so shuffle in on_epoch_end or set_epoch.
/// - Keras reads batches 0 and 1 to learn the data's specs, then calls on_epoch_end once more;
///   fit here reads batch 0 early only to build an unbuilt model before the callbacks start,
///   and trains on that same batch.
/// - An endless generator without steps_per_epoch (or steps) trains forever in Keras; here it is
///   a ValueError, so the progress bar always has a step count.
/// - No worker threads or processes (Keras's workers, use_multiprocessing, max_queue_size):
///   get_batch runs on the training thread.
class Dataset {
 public:
  /// num_batches() of a dataset without a length: a generator, endless.
  static constexpr std::int64_t kUnknown = -1;

  virtual ~Dataset() = default;
  /// Keras's __len__: the batches in one pass, or kUnknown (then fit needs
  /// FitOptions::steps_per_epoch, and evaluate and predict a number of steps).
  virtual std::int64_t num_batches() const = 0;
  /// Keras's __getitem__: the batch at `index` (0 <= index < num_batches(); with kUnknown,
  /// the indices count on across epochs).
  virtual DataBatch get_batch(std::int64_t index) = 0;
  /// Called at the end of every fit() epoch and after each evaluate() and predict() (Keras).
  virtual void on_epoch_end() {}
  /// Called by fit() before it starts a pass, with the model's epochs_trained() (so a resumed
  /// run, a second fit() or a restored checkpoint see the epoch a run never stopped would);
  /// ArrayDataset draws its order from it. Not in Keras, like PyTorch's
  /// DistributedSampler.set_epoch. Does nothing by default.
  virtual void set_epoch(std::int64_t epoch) { (void)epoch; }
};

/// A Dataset over tensors in memory: the inputs, targets and sample weights (each [n, ...])
/// cut in batches of batch_size rows, in the order fit(x, y) uses: with options.shuffle, the
/// permutation of (options.seed, epoch) that set_epoch(epoch) picks, so
/// fit(ArrayDataset(x, y, 32, {true, seed}), o) trains bit-identically to fit(x, y, o with
/// that seed). Batches are copies (take) of the rows. ShapeError if the tensors differ in
/// length or are scalars, ValueError for an undefined one or batch_size <= 0, ShapeError for
/// sample_weight not [n].
class ArrayDataset : public Dataset {
 public:
  ArrayDataset(std::vector<Tensor> inputs, std::vector<Tensor> targets, std::int64_t batch_size = 32,
               BatchOptions options = {}, Tensor sample_weight = Tensor());
  /// One input and one target (y may be undefined: inputs only).
  ArrayDataset(const Tensor& x, const Tensor& y, std::int64_t batch_size = 32, BatchOptions options = {},
               Tensor sample_weight = Tensor());

  std::int64_t num_batches() const override { return batches_.size(); }
  /// IndexError for an index outside [0, num_batches()).
  DataBatch get_batch(std::int64_t index) override;
  /// Picks the order of `epoch` (shuffled: a new permutation; otherwise 0 .. n-1).
  void set_epoch(std::int64_t epoch) override;
  std::int64_t num_examples() const { return batches_.num_examples(); }

 private:
  std::vector<Tensor> inputs_, targets_;
  Tensor sample_weight_;
  BatchIterator batches_;  // of example indices: the batch count and each epoch's order
  Tensor order_;           // int64 [n], the current epoch's
};

/// A Dataset of an endless generator, Keras's Python generator passed to fit: each
/// get_batch() calls `next` once, whatever the index (batches come in call order).
/// num_batches() is kUnknown, so fit needs steps_per_epoch and evaluate / predict a number of
/// steps (ValueError naming the method otherwise; Keras would loop forever on an endless one).
class GeneratorDataset : public Dataset {
 public:
  /// ValueError for an empty function.
  explicit GeneratorDataset(std::function<DataBatch()> next);

  std::int64_t num_batches() const override { return kUnknown; }
  DataBatch get_batch(std::int64_t index) override;

 private:
  std::function<DataBatch()> next_;
};

/// Keras's timeseries_dataset_from_array options (their defaults are Keras's).
struct TimeseriesOptions {
  /// Steps between the starts of consecutive sequences.
  std::int64_t sequence_stride = 1;
  /// Steps between consecutive elements of a sequence (6 takes every sixth row).
  std::int64_t sampling_rate = 1;
  std::int64_t batch_size = 128;
  /// A new order of the sequences every epoch (from seed and the epoch, as ArrayDataset's).
  bool shuffle = false;
  std::uint64_t seed = 0;
  /// The rows [start_index, end_index) of data (and targets from start_index) are used;
  /// end_index -1 is the end of the data.
  std::int64_t start_index = 0;
  std::int64_t end_index = -1;
};

/// Keras's keras.utils.timeseries_dataset_from_array (the book's chapter 10): sliding windows
/// over data [n, ...]. Sequence i starts at row p = start_index + i * sequence_stride and holds
/// rows p, p + sampling_rate, ..., p + (sequence_length - 1) * sampling_rate: inputs [batch,
/// sequence_length, ...]; its target is targets[p] (targets [m, ...], optional). There are
/// end_index - start_index - (sequence_length - 1) * sampling_rate possible starts (no more
/// than the targets' length, as Keras), every sequence_stride-th of them taken.
///
///     TimeseriesOptions o;
///     o.sampling_rate = 6;
///     o.batch_size = 256;
///     o.shuffle = true;
///     o.end_index = num_train_samples;
///     TimeseriesDataset train(raw_data(Slice(0, -delay)), temperature(Slice(delay, none)), 120, o);
///     model.fit(train, fit_options);
///
/// Batches are gathered on demand (the windows are never all in memory at once). ValueError,
/// as Keras, for a start_index outside the data, an end_index not after start_index or not
/// before the end of the data, a sampling_rate or sequence_stride <= 0 or not below the
/// data's length, a sequence_length <= 0, and (unlike Keras, which gives an empty dataset)
/// data too short for one sequence. Unlike Keras, shuffling draws a new permutation of all the
/// sequences every epoch from tapeflow's generator (Keras shuffles the starts once with
/// NumPy, then within a buffer of 8 batches every epoch).
class TimeseriesDataset : public Dataset {
 public:
  TimeseriesDataset(Tensor data, Tensor targets, std::int64_t sequence_length, TimeseriesOptions options = {});

  std::int64_t num_batches() const override { return batches_.size(); }
  /// IndexError for an index outside [0, num_batches()).
  DataBatch get_batch(std::int64_t index) override;
  void set_epoch(std::int64_t epoch) override;
  /// How many sequences a pass holds.
  std::int64_t num_sequences() const { return batches_.num_examples(); }

 private:
  Tensor data_, targets_;
  std::int64_t sequence_length_;
  TimeseriesOptions options_;
  Tensor starts_;          // int64 [sequences]: each sequence's first row
  BatchIterator batches_;  // over the sequences: the batch count and each epoch's order
  Tensor order_;           // int64 [sequences]: the current epoch's order
};

}  // namespace tapeflow
