#pragma once
/// Keras's callbacks: hooks fit() calls at the start and end of training, epochs and batches.
#include <cstdint>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tapeflow/model.hpp"

namespace tapeflow::callbacks {

/// Base of the callbacks; fit() sets the model before on_train_begin.
class Callback {
 public:
  virtual ~Callback() = default;
  void set_model(Model* model) { model_ = model; }
  /// The model being trained (ValueError when none was set).
  Model& model() const;

  virtual void on_train_begin(const Logs& logs) { (void)logs; }
  virtual void on_train_end(const Logs& logs) { (void)logs; }
  virtual void on_epoch_begin(int epoch, const Logs& logs) { (void)epoch, (void)logs; }
  /// `logs` holds the epoch's training metrics and the val_ ones.
  virtual void on_epoch_end(int epoch, const Logs& logs) { (void)epoch, (void)logs; }
  /// The default does nothing (and notes that it ran: see reads_batch_logs).
  virtual void on_train_batch_end(std::int64_t batch, const Logs& logs) {
    (void)batch, (void)logs;
    batch_hook_unused_ = true;
  }
  /// Whether on_train_batch_end reads its logs. fit() reads the metrics after a batch (waiting
  /// for a CUDA device to finish it) only when a callback does. By default: until this base
  /// on_train_batch_end has run once, so a callback that does not override it reads only the
  /// first batch's logs (as Keras calls only the batch hooks a callback implements); so do the
  /// built-in epoch callbacks, and a subclass of one that adds a batch hook reads every batch.
  /// A callback whose hook ignores the logs may say false: it is then given the logs that the
  /// step returned (none from the built-in step).
  virtual bool reads_batch_logs() const { return !batch_hook_unused_; }

 private:
  Model* model_ = nullptr;
  bool batch_hook_unused_ = false;
};

/// Whether larger or smaller values of the monitored metric are better. Auto: larger for
/// names containing "acc", "auc", "precision" or "recall" (the metrics Keras 3 marks "up":
/// accuracies, top-k, AUC, precision, recall), smaller otherwise (losses, errors).
enum class Mode { Auto, Min, Max };

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  /// An improvement must beat the best value by more than this.
  double min_delta = 0;
  /// Epochs without improvement before stopping.
  int patience = 0;
  Mode mode = Mode::Auto;
  /// Stop unless the metric beats this value (none: no baseline).
  std::optional<double> baseline;
  /// At the end of training, put back the weights of the best epoch.
  bool restore_best_weights = false;
};

/// Stops training when the monitored metric has stopped improving (Keras 3's rules).
class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  EarlyStopping(const std::string& monitor, int patience);

  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;

  /// The 0-based epoch at which training was stopped (0 if it was not).
  int stopped_epoch() const { return stopped_epoch_; }
  int best_epoch() const { return best_epoch_; }
  std::optional<double> best() const { return best_; }

 private:
  bool improves(double value, std::optional<double> reference) const;

  EarlyStoppingOptions options_;
  bool maximize_;
  int wait_ = 0;
  int stopped_epoch_ = 0;
  int best_epoch_ = 0;
  std::optional<double> best_;
  std::vector<Tensor> best_weights_;
};

/// Writes one CSV row per epoch: "epoch" then the logs' keys sorted by name (Keras).
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string path, char separator = ',', bool append = false);

  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;

 private:
  std::string path_;
  char separator_;
  bool append_;
  bool write_header_ = true;
  std::vector<std::string> keys_;
  std::ofstream file_;
};

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  /// Save only when the monitored metric improves on the best so far.
  bool save_best_only = false;
  Mode mode = Mode::Auto;
  /// 1: print a line on each save.
  int verbose = 0;
  /// true: save_weights; false: save_checkpoint (weights, optimizer state, generators, epochs;
  /// the model must be compiled), which load_checkpoint resumes from and load_weights reads
  /// too. Keras defaults to false, a full model.save; ours stays true, the file it always
  /// wrote: our full save cannot hold the architecture anyway (it is C++ code), is several times
  /// larger with Adam's slots, and resuming is BackupAndRestore's job.
  bool save_weights_only = true;
};

/// Saves the weights (save_weights) or a checkpoint (save_checkpoint, with save_weights_only
/// off) at the end of every epoch, or of each best epoch. The path
/// may hold "{epoch}" (1-based, with a format spec as in "{epoch:02d}") and "{<log key>}"
/// ("{val_loss:.4f}"), as Keras's filepath; "{{" and "}}" are literal braces.
class ModelCheckpoint : public Callback {
 public:
  /// Throws ValueError when the path cannot be formatted (a bad spec, an unclosed '{').
  explicit ModelCheckpoint(std::string path, ModelCheckpointOptions options = {});

  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

  /// The path for `epoch` (0-based) and `logs`.
  std::string format_path(int epoch, const Logs& logs) const;
  std::optional<double> best() const { return best_; }

 private:
  std::string path_;
  ModelCheckpointOptions options_;
  bool maximize_;
  std::optional<double> best_;
};

/// Keras's BackupAndRestore: makes a fit() that was interrupted (a crash, a killed job) go on
/// where it stopped when the same fit() is run again, by a fresh process, on a model built and
/// compiled from the same code:
///
///     FitOptions o;
///     o.epochs = 10;
///     o.callbacks = {std::make_shared<callbacks::BackupAndRestore>("/tmp/backup")};
///     model.fit(x, y, o);  // killed in epoch 7? the same call starts at epoch 6 (0-based)
///
/// At each epoch's end it writes a checkpoint (Model::save_checkpoint, atomic) to
/// "<backup_dir>/latest.checkpoint.safetensors", with the 0-based epoch to resume at in its
/// metadata ("backup_epoch"). At train begin, if that file exists, it loads it
/// (load_checkpoint: weights, optimizer state, generators, epochs trained) and sets
/// Model::resume_epoch, so the resumed run gives bit-identical weights to one never stopped.
/// After a fit() that ends normally (EarlyStopping included) it deletes the file, and
/// backup_dir if that leaves it empty (Keras deletes the whole folder; ours keeps anything
/// else there), unless delete_checkpoint is false.
class BackupAndRestore : public Callback {
 public:
  /// save_freq: only "epoch" (Keras's default) is supported; a number of batches would need
  /// fit() to skip into an epoch. ValueError for an empty backup_dir or another save_freq.
  explicit BackupAndRestore(std::string backup_dir, std::string save_freq = "epoch", bool delete_checkpoint = true);

  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;

  /// The checkpoint file it writes and restores.
  const std::string& path() const { return path_; }

 private:
  std::string backup_dir_;
  std::string path_;
  bool delete_checkpoint_;
};

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  /// new learning rate = old * factor; must be below 1.
  double factor = 0.1;
  /// Epochs without improvement before the rate is reduced.
  int patience = 10;
  Mode mode = Mode::Auto;
  /// An improvement must beat the best value by more than this.
  double min_delta = 1e-4;
  /// Epochs to wait after a reduction before counting again.
  int cooldown = 0;
  /// The rate is never reduced below this.
  double min_lr = 0;
  /// 1: print a line on each reduction.
  int verbose = 0;
};

/// Keras's ReduceLROnPlateau: multiplies the optimizer's (constant) learning rate by `factor`
/// when the monitored metric has not improved for `patience` epochs. A learning-rate schedule
/// is code it cannot change: ValueError at train begin.
class ReduceLROnPlateau : public Callback {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {});

  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  ReduceLROnPlateauOptions options_;
  bool maximize_;
  int wait_ = 0;
  int cooldown_counter_ = 0;
  std::optional<double> best_;  // Keras 3's None: the first epoch always improves on it, even NaN
};

/// Keras's LearningRateScheduler: at each epoch's start sets the learning rate to
/// schedule(epoch, current rate) (epoch 0-based). The optimizer must have a constant rate
/// (ValueError otherwise); a non-finite or negative new rate is a ValueError.
class LearningRateScheduler : public Callback {
 public:
  using Schedule = std::function<double(int epoch, double learning_rate)>;
  explicit LearningRateScheduler(Schedule schedule, int verbose = 0);

  void on_epoch_begin(int epoch, const Logs& logs) override;

 private:
  Schedule schedule_;
  int verbose_;
};

/// Stops training after a batch whose loss is NaN or infinite (Keras's TerminateOnNaN).
class TerminateOnNaN : public Callback {
 public:
  void on_train_batch_end(std::int64_t batch, const Logs& logs) override;
};

/// A callback from functions (Keras's LambdaCallback); any may be left empty.
struct LambdaCallback : Callback {
  std::function<void(const Logs&)> train_begin, train_end;
  std::function<void(int, const Logs&)> epoch_begin, epoch_end;
  std::function<void(std::int64_t, const Logs&)> train_batch_end;

  void on_train_begin(const Logs& logs) override {
    if (train_begin) train_begin(logs);
  }
  void on_train_end(const Logs& logs) override {
    if (train_end) train_end(logs);
  }
  void on_epoch_begin(int epoch, const Logs& logs) override {
    if (epoch_begin) epoch_begin(epoch, logs);
  }
  void on_epoch_end(int epoch, const Logs& logs) override {
    if (epoch_end) epoch_end(epoch, logs);
  }
  void on_train_batch_end(std::int64_t batch, const Logs& logs) override {
    if (train_batch_end) train_batch_end(batch, logs);
  }
  bool reads_batch_logs() const override { return static_cast<bool>(train_batch_end); }
};

}  // namespace tapeflow::callbacks
