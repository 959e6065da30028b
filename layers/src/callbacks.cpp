// Callbacks: EarlyStopping, CSVLogger, ModelCheckpoint and BackupAndRestore with Keras 3's rules.
#include "tapeflow/callbacks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <system_error>

#include "tapeflow/safetensors.hpp"

namespace tapeflow::callbacks {
namespace {

bool maximizes(Mode mode, const std::string& monitor) {
  if (mode != Mode::Auto) return mode == Mode::Max;
  for (const char* up : {"acc", "auc", "precision", "recall"})
    if (monitor.find(up) != std::string::npos) return true;
  return false;
}

void warn_missing(const char* who, const std::string& monitor, const Logs& logs) {
  std::string keys;
  for (const auto& [k, v] : logs) keys += (keys.empty() ? "" : ", ") + k;
  std::fprintf(stderr, "%s: the metric '%s' is not in the logs (available: %s); skipping\n", who, monitor.c_str(),
               keys.c_str());
}

// Python's str.format on Keras's filepath: "{{" and "}}" are literal braces, "{key:spec}" a field
// filled with epoch + 1 (key "epoch") or logs[key]; a field whose key is not there is kept as
// written. Without logs (the constructor's check) every field is formatted with a sample value,
// so that a bad spec is a ValueError before training rather than after the first epoch.
std::string expand_path(const std::string& path, int epoch, const Logs* logs) {
  const auto bad = [&](const std::string& why) {
    return ValueError(fmt::format("ModelCheckpoint: cannot format the path '{}': {}", path, why));
  };
  std::string out;
  std::size_t i = 0;
  while (i < path.size()) {
    const char c = path[i];
    if ((c == '{' || c == '}') && i + 1 < path.size() && path[i + 1] == c) {  // "{{" -> "{", "}}" -> "}"
      out += c;
      i += 2;
      continue;
    }
    if (c == '}') throw bad(fmt::format("single '}}' at position {}", i));
    if (c != '{') {
      out += c;
      ++i;
      continue;
    }
    const std::size_t close = path.find('}', i);
    if (close == std::string::npos) throw bad(fmt::format("'{{' at position {} is not closed", i));
    const std::string field = path.substr(i + 1, close - i - 1);  // "epoch:02d"
    if (field.find('{') != std::string::npos) throw bad(fmt::format("nested field '{{{}}}'", field));
    const std::size_t colon = field.find(':');
    const std::string key = field.substr(0, colon);
    const std::string spec = "{" + (colon == std::string::npos ? std::string() : field.substr(colon)) + "}";
    try {
      if (key == "epoch") {
        // Python formats an int with a float presentation ("{epoch:.4f}" -> "1.0000"); fmt does not
        const bool as_float = spec.size() > 2 && std::string("eEfFgG").find(spec[spec.size() - 2]) != std::string::npos;
        out += as_float ? fmt::format(fmt::runtime(spec), double(epoch + 1))
                        : fmt::format(fmt::runtime(spec), epoch + 1);
      } else if (!logs) {
        (void)fmt::format(fmt::runtime(spec), 0.0);  // a log value is a double
      } else if (const auto it = logs->find(key); it != logs->end()) {
        out += fmt::format(fmt::runtime(spec), it->second);
      } else {
        out += path.substr(i, close - i + 1);  // not ours: kept as written
      }
    } catch (const fmt::format_error& e) {
      throw bad(fmt::format("field '{{{}}}': {}", field, e.what()));
    }
    i = close + 1;
  }
  return out;
}

}  // namespace

Model& Callback::model() const {
  if (!model_) throw ValueError("Callback: no model set (fit() sets it)");
  return *model_;
}

// ---------------------------------------------------------------- EarlyStopping

EarlyStopping::EarlyStopping(EarlyStoppingOptions options)
    : options_(std::move(options)), maximize_(maximizes(options_.mode, options_.monitor)) {
  if (options_.patience < 0) {
    throw ValueError(fmt::format("EarlyStopping: patience must be >= 0, got {}", options_.patience));
  }
  options_.min_delta = std::abs(options_.min_delta);
}

EarlyStopping::EarlyStopping(const std::string& monitor, int patience)
    : EarlyStopping([&] {
        EarlyStoppingOptions o;
        o.monitor = monitor;
        o.patience = patience;
        return o;
      }()) {}

void EarlyStopping::on_train_begin(const Logs&) {
  wait_ = 0;
  stopped_epoch_ = 0;
  best_epoch_ = 0;
  best_.reset();
  best_weights_.clear();
}

bool EarlyStopping::improves(double value, std::optional<double> reference) const {
  if (!reference) return true;
  return maximize_ ? value - options_.min_delta > *reference : value + options_.min_delta < *reference;
}

void EarlyStopping::on_epoch_end(int epoch, const Logs& logs) {
  const auto it = logs.find(options_.monitor);
  if (it == logs.end()) return warn_missing("EarlyStopping", options_.monitor, logs);
  const double current = it->second;
  ++wait_;
  if (improves(current, best_)) {
    best_ = current;
    best_epoch_ = epoch;
    if (options_.restore_best_weights) {
      best_weights_.clear();
      for (const auto& w : model().weights()) best_weights_.push_back(w.clone());
    }
    // with a baseline, the first epochs must also beat it
    if (!options_.baseline || improves(current, options_.baseline)) wait_ = 0;
    return;
  }
  if (wait_ >= options_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    model().stop_training = true;
  }
}

void EarlyStopping::on_train_end(const Logs&) {
  if (!options_.restore_best_weights || best_weights_.empty()) return;
  auto weights = model().weights();
  if (weights.size() != best_weights_.size()) return;  // the model changed during training
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i].assign(best_weights_[i]);
}

// ---------------------------------------------------------------- CSVLogger

CSVLogger::CSVLogger(std::string path, char separator, bool append)
    : path_(std::move(path)), separator_(separator), append_(append) {}

void CSVLogger::on_train_begin(const Logs&) {
  bool had_rows = false;
  if (append_) {
    std::ifstream existing(path_);
    had_rows = existing.good() && existing.peek() != std::ifstream::traits_type::eof();
  }
  write_header_ = !had_rows;
  keys_.clear();
  file_.close();
  file_.open(path_, append_ ? std::ios::app : std::ios::trunc);
  if (!file_) throw IOError(fmt::format("CSVLogger: cannot open '{}' for writing", path_));
}

void CSVLogger::on_epoch_end(int epoch, const Logs& logs) {
  if (keys_.empty()) {
    for (const auto& [k, v] : logs) keys_.push_back(k);  // std::map: sorted, as Keras sorts them
  }
  if (write_header_) {
    file_ << "epoch";
    for (const auto& k : keys_) file_ << separator_ << k;
    file_ << '\n';
    write_header_ = false;
  }
  file_ << epoch;
  for (const auto& k : keys_) {
    const auto it = logs.find(k);
    file_ << separator_ << (it == logs.end() ? std::string("NA") : fmt::format("{}", it->second));
  }
  file_ << '\n';
  file_.flush();
  if (!file_) throw IOError(fmt::format("CSVLogger: writing '{}' failed", path_));
}

void CSVLogger::on_train_end(const Logs&) { file_.close(); }

// ---------------------------------------------------------------- ModelCheckpoint

ModelCheckpoint::ModelCheckpoint(std::string path, ModelCheckpointOptions options)
    : path_(std::move(path)), options_(std::move(options)), maximize_(maximizes(options_.mode, options_.monitor)) {
  expand_path(path_, 0, nullptr);  // a bad path fails here rather than after the first epoch
}

void ModelCheckpoint::on_train_begin(const Logs&) { best_.reset(); }

std::string ModelCheckpoint::format_path(int epoch, const Logs& logs) const { return expand_path(path_, epoch, &logs); }

void ModelCheckpoint::on_epoch_end(int epoch, const Logs& logs) {
  if (options_.save_best_only) {
    const auto it = logs.find(options_.monitor);
    if (it == logs.end()) return warn_missing("ModelCheckpoint", options_.monitor, logs);
    const double current = it->second;
    // Keras starts from best = +inf (min) or -inf (max): a NaN epoch never compares better, so it
    // is skipped and the next finite value is saved.
    const double inf = std::numeric_limits<double>::infinity();
    const double reference = best_ ? *best_ : (maximize_ ? -inf : inf);
    const bool better = maximize_ ? current > reference : current < reference;
    if (!better) return;
    best_ = current;
  }
  const std::string path = format_path(epoch, logs);
  if (options_.save_weights_only) {
    model().save_weights(path);
  } else {
    model().save_checkpoint(path);
  }
  if (options_.verbose > 0) std::printf("\nEpoch %d: saving model to %s\n", epoch + 1, path.c_str());
}

// ---------------------------------------------------------------- BackupAndRestore

BackupAndRestore::BackupAndRestore(std::string backup_dir, std::string save_freq, bool delete_checkpoint)
    : backup_dir_(std::move(backup_dir)), delete_checkpoint_(delete_checkpoint) {
  if (backup_dir_.empty()) throw ValueError("BackupAndRestore: backup_dir is empty");
  if (save_freq != "epoch") {
    throw ValueError(fmt::format("BackupAndRestore: save_freq '{}' is not supported; only \"epoch\" is", save_freq));
  }
  path_ = (std::filesystem::path(backup_dir_) / "latest.checkpoint.safetensors").string();
}

void BackupAndRestore::on_train_begin(const Logs&) {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return;
  // the epoch first, so that a file that is no backup leaves the model as it was
  const auto meta = load_safetensors_metadata(path_);
  const auto it = meta.find("backup_epoch");
  const std::string text = it == meta.end() ? std::string() : it->second;
  const bool digits = std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (text.empty() || text.size() > 9 || !digits) {
    throw ValueError(fmt::format("BackupAndRestore: '{}' has no valid \"backup_epoch\" metadata ('{}'); it is not a "
                                 "backup",
                                 path_, text));
  }
  Model& m = model();
  m.load_checkpoint(path_);
  m.resume_epoch = std::stoi(text);
}

void BackupAndRestore::on_epoch_end(int epoch, const Logs&) {
  std::error_code ec;
  std::filesystem::create_directories(backup_dir_, ec);
  if (ec) throw IOError(fmt::format("BackupAndRestore: cannot create '{}': {}", backup_dir_, ec.message()));
  model().save_checkpoint(path_, {{"backup_epoch", std::to_string(epoch + 1)}});
}

void BackupAndRestore::on_train_end(const Logs&) {
  if (!delete_checkpoint_) return;
  std::error_code ec;
  std::filesystem::remove(path_, ec);
  if (std::filesystem::is_empty(backup_dir_, ec) && !ec) std::filesystem::remove(backup_dir_, ec);
}

// ---------------------------------------------------------------- learning rates

namespace {

// The optimizer's learning rate, which must be a constant for `who` to change it.
optimizers::Optimizer& constant_rate_optimizer(Model& model, const char* who) {
  optimizers::Optimizer& opt = model.optimizer();
  if (opt.learning_rate_is_schedule()) {
    throw ValueError(fmt::format("{}: the optimizer's learning rate is a schedule, which it cannot change; give the "
                                 "optimizer a constant rate",
                                 who));
  }
  return opt;
}

}  // namespace

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions options)
    : options_(std::move(options)), maximize_(maximizes(options_.mode, options_.monitor)) {
  if (!(options_.factor < 1.0) || !(options_.factor >= 0)) {
    throw ValueError(fmt::format("ReduceLROnPlateau: factor must be in [0, 1), got {}", options_.factor));
  }
  if (options_.patience < 0 || options_.cooldown < 0) {
    throw ValueError(fmt::format("ReduceLROnPlateau: patience ({}) and cooldown ({}) must be >= 0", options_.patience,
                                 options_.cooldown));
  }
  options_.min_delta = std::abs(options_.min_delta);
}

void ReduceLROnPlateau::on_train_begin(const Logs&) {
  constant_rate_optimizer(model(), "ReduceLROnPlateau");
  wait_ = 0;
  cooldown_counter_ = 0;
  best_.reset();
}

void ReduceLROnPlateau::on_epoch_end(int epoch, const Logs& logs) {
  const auto it = logs.find(options_.monitor);
  if (it == logs.end()) return warn_missing("ReduceLROnPlateau", options_.monitor, logs);
  const double current = it->second;
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  const bool better =
      !best_ || (maximize_ ? current > *best_ + options_.min_delta : current < *best_ - options_.min_delta);
  if (better) {
    best_ = current;
    wait_ = 0;
    return;
  }
  if (cooldown_counter_ > 0) return;
  if (++wait_ < options_.patience) return;
  optimizers::Optimizer& opt = constant_rate_optimizer(model(), "ReduceLROnPlateau");
  const double old_lr = opt.learning_rate();
  // Keras's rate is a float32 variable compared with float32(min_lr): once the rate is min_lr,
  // no more reductions (and no more reports)
  if (static_cast<float>(old_lr) > static_cast<float>(options_.min_lr)) {
    const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
    opt.set_learning_rate(new_lr);
    if (options_.verbose > 0) {
      std::printf("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", epoch + 1, new_lr);
    }
    cooldown_counter_ = options_.cooldown;
    wait_ = 0;
  }
}

LearningRateScheduler::LearningRateScheduler(Schedule schedule, int verbose)
    : schedule_(std::move(schedule)), verbose_(verbose) {
  if (!schedule_) throw ValueError("LearningRateScheduler: the schedule is empty");
}

void LearningRateScheduler::on_epoch_begin(int epoch, const Logs&) {
  optimizers::Optimizer& opt = constant_rate_optimizer(model(), "LearningRateScheduler");
  const double lr = schedule_(epoch, opt.learning_rate());
  if (!std::isfinite(lr) || lr < 0) {
    throw ValueError(fmt::format("LearningRateScheduler: the schedule gave {} for epoch {}; a learning rate must be a "
                                 "finite number >= 0",
                                 lr, epoch));
  }
  opt.set_learning_rate(lr);
  if (verbose_ > 0) std::printf("\nEpoch %d: LearningRateScheduler setting learning rate to %g.\n", epoch + 1, lr);
}

void TerminateOnNaN::on_train_batch_end(std::int64_t batch, const Logs& logs) {
  const auto it = logs.find("loss");
  if (it == logs.end() || std::isfinite(it->second)) return;
  std::printf("Batch %lld: Invalid loss, terminating training\n", static_cast<long long>(batch));
  model().stop_training = true;
}

}  // namespace tapeflow::callbacks
