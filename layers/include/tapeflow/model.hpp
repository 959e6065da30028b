#pragma once
/// Keras's Model API: compile, fit, evaluate, predict, a public train_step written with an
/// ordinary GradientTape, weights on disk, summary; and Sequential.
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapeflow/dataset.hpp"
#include "tapeflow/layers.hpp"
#include "tapeflow/losses.hpp"
#include "tapeflow/metrics.hpp"
#include "tapeflow/optimizers.hpp"

namespace tapeflow {

namespace callbacks {
class Callback;
}

/// Metric values by name: "loss", "accuracy", "val_loss", ...
using Logs = std::map<std::string, double>;
using LayerPtr = std::shared_ptr<layers::Layer>;
using MetricPtr = std::shared_ptr<metrics::Metric>;
using CallbackPtr = std::shared_ptr<callbacks::Callback>;

/// What fit() returns: per-epoch values of each metric, as Keras's History.history.
struct History {
  std::map<std::string, std::vector<double>> history;
  std::vector<int> epoch;  ///< 0-based epochs that ran
  /// history.at(key), with a ValueError naming the keys there are.
  const std::vector<double>& operator[](const std::string& key) const;
  bool contains(const std::string& key) const { return history.count(key) > 0; }
};

struct FitOptions {
  /// Trains epochs initial_epoch .. epochs - 1 (Keras: `epochs` is the index to stop at, so a
  /// resumed run passes the epoch it resumes from as initial_epoch).
  int epochs = 1;
  int initial_epoch = 0;
  std::int64_t batch_size = 32;
  /// The last fraction of (x, y), before shuffling, is held out for validation (Keras).
  double validation_split = 0;
  /// Validation set (x, y); overrides validation_split.
  std::optional<std::pair<Tensor, Tensor>> validation_data;
  /// The validation set of a model with several inputs or outputs: (inputs, targets), a
  /// tensor per input and per output in the model's order; overrides validation_split.
  std::optional<std::pair<std::vector<Tensor>, std::vector<Tensor>>> validation_data_list;
  /// Validate after every validation_freq-th epoch only (Keras's: epochs validation_freq,
  /// 2 validation_freq, ... counting from 1); the other epochs log no val_ keys. >= 1.
  int validation_freq = 1;
  /// Per-example weights [n_val] of validation_data (or validation_data_list), Keras's third
  /// element of validation_data: the validation loss and weighted metrics are weighed.
  Tensor validation_sample_weight;
  /// Per-example weights of the training loss, [n] (Keras's sample_weight): each batch's loss is
  /// sum(loss * w) / batch size. compile()'s weighted_metrics are weighed too; its plain
  /// metrics are not (Keras's). With validation_split, the validation rows' share of it weighs
  /// val_loss, as Keras splits it with the data.
  Tensor sample_weight;
  /// Weights by class (Keras's class_weight): an example of class k weighs class_weight[k] (1
  /// for a class not listed). The class is the label (sparse labels, [n] or [n, 1]) or the
  /// argmax of a one-hot [n, classes]. One output only; not with sample_weight (ValueError).
  std::map<std::int64_t, double> class_weight;
  /// A new order of the training examples every epoch, drawn from `seed` and the number of
  /// epochs the model has trained (so each fit() call goes on with new orders, as Keras).
  bool shuffle = true;
  std::uint64_t seed = 0;
  std::vector<CallbackPtr> callbacks;
  /// Batches per epoch, Keras's steps_per_epoch (0: a whole pass over the data). As in Keras 3,
  /// the next epoch goes on where the last stopped; an epoch that reaches the end of a finite
  /// pass ends there, early, and the next epoch starts a new pass (a new order). Required for a
  /// Dataset of unknown length (ValueError otherwise; Keras would run until the data ends).
  std::int64_t steps_per_epoch = 0;
  /// A validation Dataset (not owned: it must outlive fit()), evaluated after every epoch;
  /// not with validation_data or validation_data_list (ValueError).
  Dataset* validation_dataset = nullptr;
  /// Batches of each validation run (0: all of them); every run starts at batch 0, as Keras.
  /// Required for a validation Dataset of unknown length.
  std::int64_t validation_steps = 0;
  /// 0 silent; 1 a live progress bar on a terminal, one line per epoch otherwise; 2 one line per epoch.
  int verbose = 1;
};

/// One output's part of compile() for a model with several outputs, as Keras's
/// compile(loss=[...], metrics=[[...], ...], loss_weights=[...]): its loss, its metrics (by
/// name), its weight in the total loss, and its weighted metrics (see compile()).
///
///     model.compile("rmsprop", {{"mean_squared_error", {"mean_absolute_error"}},
///                               {"categorical_crossentropy", {"accuracy"}, 0.5}});
struct OutputLoss {
  OutputLoss(std::shared_ptr<losses::Loss> loss, std::vector<std::string> metrics = {}, double weight = 1.0,
             std::vector<std::string> weighted_metrics = {});
  OutputLoss(const std::string& loss, std::vector<std::string> metrics = {}, double weight = 1.0,
             std::vector<std::string> weighted_metrics = {});
  OutputLoss(const char* loss, std::vector<std::string> metrics = {}, double weight = 1.0,
             std::vector<std::string> weighted_metrics = {})
      : OutputLoss(std::string(loss), std::move(metrics), weight, std::move(weighted_metrics)) {}
  std::shared_ptr<losses::Loss> loss;
  std::vector<std::string> metrics;
  double weight = 1.0;
  std::vector<std::string> weighted_metrics;
};

/// A trainable network. Subclass it with call() and layers() (the book's model subclassing),
/// or use Sequential. A custom train_step() overrides what fit() does with each batch.
class Model {
 public:
  explicit Model(std::string name = "model") : name_(std::move(name)) {}
  virtual ~Model() = default;

  // ---------------------------------------------------------------- the network
  virtual Tensor call(const Tensor& x, bool training) = 0;
  /// The layers whose weights this model owns, in order (weights() and summary() list them).
  virtual std::vector<LayerPtr> layers() const = 0;
  /// Names the layers that have no name yet (unique in the model: "dense", "dense_1") and seeds
  /// the unseeded ones from the model's seed and their position, then runs call().
  Tensor operator()(const Tensor& x, bool training = false);
  /// With the mask of x (Keras's model(x, mask=...)): as operator(), then call_masked().
  Tensor operator()(const Tensor& x, const Tensor& mask, bool training = false);
  /// call() given the input's mask: a Sequential gives it to its first layer; by default it
  /// is not used.
  virtual Tensor call_masked(const Tensor& x, const Tensor& mask, bool training);

  /// A model of several inputs or outputs (Functional): the inputs in the model's order -> the
  /// outputs in theirs. By default a model has one input and one output, and this is call() on
  /// xs[0] (ValueError for another count).
  virtual std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, bool training);
  /// As operator() on one tensor (names, seeds and places the layers), then call_multi().
  std::vector<Tensor> operator()(const std::vector<Tensor>& xs, bool training = false);
  virtual std::size_t num_inputs() const { return 1; }
  virtual std::size_t num_outputs() const { return 1; }
  /// The outputs' names (a Functional model's: the layers computing them), the prefixes of the
  /// per-output logs of a model compiled with several outputs: "<name>_loss", "<name>_accuracy".
  /// Empty by default: "output_0", "output_1", ...
  virtual std::vector<std::string> output_names() const { return {}; }

  /// Keras's y_pred._keras_mask: the mask the layers computed for output `y` in the model's
  /// last call, [batch, time] for a sequence (Sequential and Functional pass masks between
  /// their layers: Embedding with mask_zero, Masking, then the layers that support masking),
  /// if y is an output of that call (the same handle or a copy of it, not a view or an op's
  /// result), else undefined. compute_loss and the compiled metrics weigh the steps by it.
  Tensor output_mask(const Tensor& y) const;

  /// Builds the layers by running one example of `input_shape` (batch axis -1 or any) through.
  void build(const Shape& input_shape);
  /// True when it has layers and all are built.
  bool built() const;
  std::vector<Variable> weights() const;
  std::vector<Variable> trainable_weights() const;
  std::vector<Variable> non_trainable_weights() const;
  std::int64_t count_params() const;
  /// Keras's get_weights() / set_weights() over weights() (see Layer::set_weights).
  std::vector<Tensor> get_weights() const;
  void set_weights(const std::vector<Tensor>& values);
  /// Keras's model.losses: the losses of every layer (Layer::losses(), each layer and weight
  /// once): activity and weight penalties, add_loss. compute_loss adds their sum.
  std::vector<Tensor> losses() const;
  /// The layer of layers() named `name` (Keras's get_layer; names are given by the first call),
  /// or at `index`; ValueError naming the layers there are.
  LayerPtr get_layer(const std::string& name) const;
  LayerPtr get_layer(std::size_t index) const;
  /// Keras's table: layer (type), output shape (None for the batch axis), param #, totals.
  /// ValueError before the model is built. Functional prints Keras 3's own table instead.
  virtual void summary(std::ostream& os = std::cout) const;
  const std::string& name() const { return name_; }
  /// Runs the model on `device`: its layers build their weights there, and fit / evaluate /
  /// predict copy each batch there. Set it before the model is built (a Functional model built
  /// when it was made and not run since rebuilds its weights there).
  virtual void set_device(Device device);
  /// The device set, else the device of the built weights, else the CPU.
  Device device() const;

  /// Reseeds every layer from `seed` (distinct seeds per layer): same seed, same run. The
  /// weights of built layers stay as they are, but a Functional model built when it was made
  /// and not run since draws its weights again from the new seed.
  virtual void set_seed(std::uint64_t seed);
  std::uint64_t seed() const { return seed_; }

  // ---------------------------------------------------------------- training
  /// `metrics` by name ("accuracy" picks its kind from the first batch's shapes, as Keras). The loss
  /// may be left out when a custom train_step() computes its own (the book's custom fit).
  /// `weighted_metrics` (Keras's) are weighed by the sample weights (fit's sample_weight or
  /// class_weight, evaluate's sample_weight) where `metrics` are not; both are weighed by the
  /// output's mask. A weighted metric whose name an unweighted one has is logged as
  /// "weighted_<name>", as in Keras.
  void compile(std::shared_ptr<optimizers::Optimizer> optimizer, std::shared_ptr<losses::Loss> loss = nullptr,
               const std::vector<std::string>& metrics = {}, const std::vector<std::string>& weighted_metrics = {});
  void compile(const std::string& optimizer, const std::string& loss, const std::vector<std::string>& metrics = {},
               const std::vector<std::string>& weighted_metrics = {});
  void compile(const std::string& optimizer);
  void compile(std::shared_ptr<optimizers::Optimizer> optimizer, const std::string& loss,
               const std::vector<std::string>& metrics = {}, const std::vector<std::string>& weighted_metrics = {});
  void compile(const std::string& optimizer, std::shared_ptr<losses::Loss> loss,
               const std::vector<std::string>& metrics = {}, const std::vector<std::string>& weighted_metrics = {});
  /// A loss (with its metrics and weight) per output, in the model's order. The loss minimised
  /// is the weighted sum; the logs hold it as "loss", each output's unweighted loss as
  /// "<output>_loss" and each metric as "<output>_<metric>" (Keras's keys). One OutputLoss is
  /// compile(optimizer, loss, metrics) with the loss scaled by its weight.
  void compile(std::shared_ptr<optimizers::Optimizer> optimizer, std::vector<OutputLoss> outputs);
  void compile(const std::string& optimizer, std::vector<OutputLoss> outputs);

  /// Trains over (x, y) [n, ...] in batches; returns the per-epoch logs. Each batch is the
  /// model's own copy (a train_step may change it in place). y may be undefined when a custom
  /// train_step does without labels (the default one raises ValueError). As Keras, when the
  /// epochs end (epochs > 0) the optimizer's finalize_variable_values() runs on the trainable
  /// weights (with use_ema: the moving averages become the weights), before on_train_end.
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  /// Loss and metrics over (x, y), in inference mode. verbose as in FitOptions. With a
  /// sample_weight [n], the loss is Keras's sum(loss * w) / batch and the weighted metrics are
  /// weighed (the unweighted ones are not).
  Logs evaluate(const Tensor& x, const Tensor& y, std::int64_t batch_size = 32, int verbose = 1,
                const Tensor& sample_weight = Tensor());
  /// The model's outputs for x, batch by batch, in inference mode.
  Tensor predict(const Tensor& x, std::int64_t batch_size = 32);

  /// fit, evaluate and predict for a model of several inputs or outputs: a tensor per input
  /// (xs) and per output (ys), each [n, ...] with the same n (ShapeError naming them otherwise),
  /// in the model's order. FitOptions::validation_data_list gives a validation set.
  History fit(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const FitOptions& options = {});
  Logs evaluate(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, std::int64_t batch_size = 32,
                int verbose = 1, const Tensor& sample_weight = Tensor());
  std::vector<Tensor> predict(const std::vector<Tensor>& xs, std::int64_t batch_size = 32);

  /// fit, evaluate and predict on a Dataset, Keras's model.fit(py_dataset): the batches come
  /// from data.get_batch(), each copied to the model's device; their sample weights weigh the
  /// loss (sum(loss * w) / batch) and the weighted metrics. Callbacks, History, validation,
  /// initial_epoch, stop_training and the progress output are as in fit on arrays (one loop
  /// runs both). Of FitOptions, batch_size, shuffle and seed do not apply (the Dataset makes
  /// its batches and order), and sample_weight and validation_split are ValueErrors (Keras's:
  /// arrays only); class_weight weighs each batch from its targets (ValueError for a batch with
  /// sample weights too). Every batch is checked: as many inputs as the model takes
  /// (ValueError), inputs, targets and sample weights of one batch size (ShapeError); the
  /// messages name the model, the method and the batch index.
  History fit(Dataset& data, const FitOptions& options = {});
  /// Batches 0 .. steps - 1 (steps 0 or more than num_batches(): every batch, as Keras stops
  /// where the data runs out; required for a Dataset of unknown length), then
  /// data.on_epoch_end(), as Keras.
  Logs evaluate(Dataset& data, std::int64_t steps = 0, int verbose = 1);
  /// The outputs of batches 0 .. steps - 1, a tensor per output concatenated over the batches
  /// (the batches' targets are ignored), then data.on_epoch_end().
  std::vector<Tensor> predict(Dataset& data, std::int64_t steps = 0);

  /// Keras's train_on_batch: one optimisation step on this batch (copied to the model's device),
  /// weighted by sample_weight or class_weight as in fit (not both: ValueError), the model built
  /// and its layers named first if need be. The metrics are reset first, as Keras 3 does, so the
  /// logs are this batch's ("loss" and each metric).
  Logs train_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight = Tensor(),
                      const std::map<std::int64_t, double>& class_weight = {});
  Logs train_on_batch(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                      const Tensor& sample_weight = Tensor(), const std::map<std::int64_t, double>& class_weight = {});
  /// Keras's test_on_batch: the loss and metrics of this batch alone (metrics reset first), in
  /// inference mode.
  Logs test_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight = Tensor());
  Logs test_on_batch(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                     const Tensor& sample_weight = Tensor());
  /// Keras's predict_on_batch: the model in inference mode on this batch, not recorded by a
  /// tape, on the model's device. The Tensor form needs one output (ValueError otherwise).
  Tensor predict_on_batch(const Tensor& x);
  std::vector<Tensor> predict_on_batch(const std::vector<Tensor>& xs);

  /// One optimisation step, as Keras's train_step: forward under a GradientTape, loss,
  /// tape.gradient, optimizer.apply_gradients, metrics. Returns the running metric values;
  /// within fit() and evaluate() an empty map: they read the metrics (waiting for a CUDA
  /// device) only when they show or pass them on, and put them under the keys an override adds
  /// to these logs. An override that needs the values there calls metric_results().
  virtual Logs train_step(const Tensor& x, const Tensor& y);
  /// One evaluation batch: forward in inference mode, loss and metrics.
  virtual Logs test_step(const Tensor& x, const Tensor& y);
  /// What fit() and evaluate() run on each batch: with one input and one output (and a single
  /// loss) train_step(xs[0], ys[0]) / test_step(...), so a custom train_step is used; otherwise
  /// the same step over every input and output: the weighted sum of the outputs' losses.
  /// With a sample_weight (fit's sample or class weights), the built-in step runs, not a custom
  /// train_step(x, y).
  virtual Logs train_step_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                                const Tensor& sample_weight = Tensor());
  virtual Logs test_step_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                               const Tensor& sample_weight = Tensor());
  /// The compiled loss (reduced by its reduction: by default the mean over the batch), plus the
  /// sum of losses() (Keras 3's compute_loss: regularization penalties count in the logged loss
  /// too). A loss with Reduction::None gives its unreduced values, as Keras: training follows
  /// the gradient of their sum (the tape's, as Keras's), the "loss" logged is their mean
  /// (Keras's loss tracker); ValueError naming the loss and its reduction when losses() is not
  /// empty then (Keras cannot add the two either).
  Tensor compute_loss(const Tensor& y, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) const;
  /// The total loss of several outputs: the sum of each output's loss times its weight (an
  /// unreduced one broadcast with the others, as Keras's sum); each unweighted loss goes to
  /// `per_output` when given. ValueError unless there are as many targets and predictions as
  /// compiled losses.
  Tensor compute_loss(const std::vector<Tensor>& ys, const std::vector<Tensor>& y_preds,
                      std::vector<Tensor>* per_output = nullptr, const Tensor& sample_weight = Tensor()) const;
  /// The metrics fit() resets each epoch and shows: the loss tracker ("loss") and the compiled
  /// metrics. A custom train_step() with its own trackers overrides this, as in Keras.
  virtual std::vector<MetricPtr> metrics() const;
  void reset_metrics();
  /// Each metric's result by name.
  Logs metric_results() const;
  optimizers::Optimizer& optimizer() const;
  /// The compiled loss (ValueError when compile() was given none).
  const losses::Loss& loss() const;
  bool compiled() const { return optimizer_ != nullptr; }
  /// Set by a callback (EarlyStopping) to end fit() after the current batch.
  bool stop_training = false;
  /// Set by a callback's on_train_begin (BackupAndRestore) to start fit() at this 0-based epoch
  /// instead of FitOptions::initial_epoch, as Keras's model._initial_epoch; fit() reads it after
  /// on_train_begin and clears it. Callbacks see a built model in on_train_begin: fit() builds an
  /// unbuilt one on its first batch first (inference mode, as Keras 3's symbolic build).
  std::optional<int> resume_epoch;
  /// Epochs trained by every fit() so far (a checkpoint restores it): the epoch index of the
  /// next shuffled order.
  std::int64_t epochs_trained() const { return epochs_trained_; }
  /// The History of the last fit().
  const History& history() const { return history_; }

  // ---------------------------------------------------------------- weights on disk
  /// Every weight as safetensors, named "<layer>/<weight>" ("dense/kernel"); atomic write.
  void save_weights(const std::string& path) const;
  /// Reads weights saved by save_weights into this (built) model. Names, shapes and dtypes
  /// must match exactly (ValueError / ShapeError / DTypeError naming the weight); nothing is
  /// changed unless everything matches. Bit-exact. A checkpoint file (save_checkpoint) is read
  /// too: its weights only, the training state in it is ignored.
  void load_weights(const std::string& path);

  /// Everything training needs to go on exactly where it stopped, in one safetensors file
  /// written atomically, as tf.train.Checkpoint(model=, optimizer=) (not Keras's model.save:
  /// the architecture is C++ code, so the file holds state only, and loading needs a model
  /// built from the same code). Entries:
  ///   "<layer>/<weight>"               every weight, named as save_weights names it;
  ///   "__optimizer__/iterations"       int64 [], the optimizer's steps;
  ///   "__optimizer__/learning_rate"    float64 [], only when the learning rate is a constant;
  ///   "__optimizer__/<weight>/<slot>"  each slot of each trainable weight ("__optimizer__/dense/kernel/m");
  ///   "__generator__/<layer>"          int64 [2], the seed and offset of each layer's and
  ///                                    sublayer's generator (dropout masks), bits of the uint64s;
  ///   "__model__/epochs_trained"       int64 [], epochs_trained() (the shuffling's epoch).
  /// Metadata: "format": "tapeflow", "checkpoint": "1" (the layout's version), "model": name(),
  /// "optimizer": optimizer().name(), then `metadata` (a callback's own keys; the four above
  /// are reserved, ValueError). The model must be built and compiled (ValueError), and no weight
  /// or layer name may start with "__" (ValueError).
  void save_checkpoint(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;
  /// Restores a file of save_checkpoint into this model, built and compiled from the same code
  /// with an optimizer of the same class (name()) and settings: weights, optimizer state,
  /// generators and epochs_trained(), so that training resumed with
  /// FitOptions::initial_epoch = the epochs done gives bit-identical weights to a run never
  /// stopped. All or nothing: a file that is not a checkpoint, another optimizer, an entry
  /// missing or unexpected (ValueError), of another shape (ShapeError) or dtype (DTypeError)
  /// raises an error naming the model, the file and the entry, with nothing changed; a missing
  /// or corrupt file is an IOError. The learning rate follows Optimizer::set_state.
  void load_checkpoint(const std::string& path);

 protected:
  /// Records `mask` as the mask of output `y` of this call (output_mask); an undefined mask
  /// records nothing. operator() forgets the previous call's masks first. A subclassed
  /// model's call() may record the mask of its output too.
  void set_output_mask(const Tensor& y, const Tensor& mask);

  /// The seed of the index-th layer of a model seeded with `seed`.
  static std::uint64_t layer_seed(std::uint64_t seed, std::size_t index);
  /// Gives an unnamed `layer` its class's default name made unique among `others` ("dense_2"),
  /// and an unseeded, unbuilt one the seed of position `index`.
  void name_layer(layers::Layer& layer, const std::vector<LayerPtr>& others, std::size_t index) const;
  /// What operator() does before call(): names and seeds each layer of layers() that is
  /// unnamed or unseeded (name_layer), and puts the unbuilt ones on the model's device if set.
  void prepare_layers();

 private:
  void require_compiled(const char* what) const;
  void require_inputs(const char* method, std::size_t given) const;

  // Where a batch from fit / evaluate / predict goes: the model's device once it is set or
  // built, else the data's own device (the layers then build there).
  Device batch_device(const Tensor& x) const;

  std::string name_;
  std::vector<std::pair<std::uint64_t, Tensor>> output_masks_;  // the last call's: output id -> mask
  std::uint64_t seed_ = 0;
  std::int64_t epochs_trained_ = 0;  // by every fit(): the shuffling's epoch index
  std::optional<Device> device_;
  std::shared_ptr<optimizers::Optimizer> optimizer_;
  std::shared_ptr<losses::Loss> loss_;
  double loss_weight_ = 1.0;
  std::shared_ptr<metrics::Mean> loss_tracker_ = std::make_shared<metrics::Mean>("loss");
  std::vector<MetricPtr> metrics_, weighted_metrics_;
  // compiled with several outputs: each output's loss, loss tracker and metrics
  std::vector<OutputLoss> output_losses_;
  std::vector<std::shared_ptr<metrics::Mean>> output_loss_trackers_;
  std::vector<std::vector<MetricPtr>> output_metrics_, output_weighted_metrics_;
  // the metrics of one output (or the only one) given a batch: the unweighted ones weighed by
  // the mask, the weighted ones by the mask times sample_weight
  void update_metrics(const std::vector<MetricPtr>& unweighted, const std::vector<MetricPtr>& weighted,
                      const Tensor& y, const Tensor& y_pred, const Tensor& sample_weight) const;
  // names the per-output trackers and metrics after output_names() (the layers are named now)
  void name_output_metrics();
  // While fit() and evaluate() run (defer_logs_), the built-in steps return no logs and set
  // logs_deferred_: the metrics' results, which wait for a CUDA device, are read only when the
  // progress bar draws, a callback reads a batch's logs, or the pass ends.
  bool defer_logs_ = false, logs_deferred_ = false;
  // the built-in steps' logs: metric_results(), or none while deferred
  Logs step_logs();
  // a batch's logs: what its step returned, over the metrics' results if it deferred them
  Logs batch_logs(const Logs& returned, bool deferred) const;
  // one step over several inputs / outputs (training: with the optimizer)
  Logs multi_step(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const Tensor& sample_weight,
                  bool training);
  // fit's per-example weights [n] from FitOptions::sample_weight or class_weight (undefined: none)
  Tensor example_weights(const FitOptions& options, const std::vector<Tensor>& ys) const;
  // class_weight's weight of each example of the one target ys[0] [n] (sparse or one-hot)
  Tensor class_weights(const std::map<std::int64_t, double>& class_weight, const std::vector<Tensor>& ys,
                       const char* method = "fit") const;
  // `w` checked to be numeric [n] for targets ys [n, ...], as float32 (undefined stays so)
  Tensor checked_weights(const char* method, const std::string& what, const Tensor& w,
                         const std::vector<Tensor>& ys) const;
  // FitOptions' checks common to fit on arrays and on a Dataset
  void check_fit_options(const FitOptions& options) const;
  // The one training loop: fit on arrays runs it on ArrayDatasets. class_weight weighs each
  // batch from its targets (fit on arrays passes none: its weights are in its batches).
  History fit_loop(Dataset& train, Dataset* validation, const FitOptions& options,
                   const std::map<std::int64_t, double>& class_weight);
  // The batches a run over `data` takes: `steps` (0: all) of num_batches(), checked
  std::int64_t dataset_steps(const Dataset& data, std::int64_t steps, const char* method, const char* what) const;
  // data.get_batch(index), checked for this model (targets too unless `inputs_only`)
  DataBatch checked_batch(Dataset& data, std::int64_t index, const char* method, bool inputs_only) const;
  History history_;
};

namespace detail {
template <class T>
struct is_layer_arg : std::is_base_of<layers::Layer, std::decay_t<T>> {};
template <class T>
struct is_layer_arg<std::shared_ptr<T>> : std::is_base_of<layers::Layer, T> {};
template <class T>
inline constexpr bool is_layer_arg_v = is_layer_arg<std::decay_t<T>>::value;
}  // namespace detail

/// A plain stack of layers, each feeding the next:
///     Sequential model(Dense(512, "relu"), Dense(10, "softmax"));
class Sequential : public Model {
 public:
  explicit Sequential(std::string name = "sequential") : Model(std::move(name)) {}
  explicit Sequential(const std::vector<LayerPtr>& layers, std::string name = "sequential");
  /// Keras's Sequential([...]): `Sequential model({dense1, dense2});` with shared_ptrs.
  Sequential(std::initializer_list<LayerPtr> layers, std::string name = "sequential")
      : Sequential(std::vector<LayerPtr>(layers), std::move(name)) {}
  /// Layers by value (copied into the model) or as shared_ptrs.
  template <class... L, class = std::enable_if_t<(sizeof...(L) > 0) && (detail::is_layer_arg_v<L> && ...)>>
  explicit Sequential(L&&... layers) : Model("sequential") {
    (add(std::forward<L>(layers)), ...);
  }

  /// Appends a layer; an unnamed one is named after its class, unique in the model ("dense_1").
  void add(LayerPtr layer);
  template <class L, class = std::enable_if_t<std::is_base_of_v<layers::Layer, std::decay_t<L>>>>
  void add(L&& layer) {
    add(LayerPtr(std::make_shared<std::decay_t<L>>(std::forward<L>(layer))));
  }
  /// Removes the last layer.
  void pop();

  Tensor call(const Tensor& x, bool training) override;
  /// call() with the mask of x given to the first layer (a Sequential used as a layer of
  /// another model, after an Embedding with mask_zero); each layer's mask goes to the next.
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;
  std::vector<LayerPtr> layers() const override { return layers_; }

 private:
  std::vector<LayerPtr> layers_;
};

}  // namespace tapeflow
