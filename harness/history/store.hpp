#pragma once
// The results history: every run added to one SQLite file (results/history.db by default), for
// trends and change points across commits (docs/history.md). A run is stored whole — its
// environment fingerprint, git revision, config and every trial — under its runId.
//
// The file is checked before anything is written: a file that is not SQLite, another
// application's database, a corrupt store or one with a newer schema than this build reads is
// refused with Error(kBadInput) naming the file, and left as it was. An older schema is migrated
// in one transaction. WAL journal and a busy timeout let several writers (CI jobs) add at once:
// each add is one transaction (BEGIN IMMEDIATE), so a killed add leaves the store as before.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "history/sqlite.hpp"
#include "results/document.hpp"

namespace hrb::history {

// PRAGMA user_version of the newest schema this build writes; the migrations from each older
// version are in store.cpp.
constexpr int kSchemaVersion = 3;
// PRAGMA application_id of a history store: "HRBH".
constexpr int32_t kApplicationId = 0x48524248;

// The id a run is stored under: its runId, or for a file without one "fnv-" and the digest.
std::string run_id_of(const results::Run& run);
// FNV-1a of the run's canonical JSON (results::to_json, keys sorted), 16 hex digits.
std::string digest_of(const results::Run& run);

struct RunInfo {
  std::string run_id, git_revision, started_at, environment, source, added_at;
  bool complete = false;
  int64_t trials = 0, valid = 0;
};

enum class Added { kAdded, kAlreadyStored, kReplaced };
struct AddResult {
  Added status = Added::kAdded;
  std::string run_id;
  size_t trials = 0;
};

// One series: a metric of one cell (mode, scenario, workload, and scan value when the run
// scanned a parameter) across runs.
struct SeriesKey {
  std::string metric, mode, scenario, workload;
  std::string scan;             // "services=1000", or empty
  std::string family = "ipv4";  // the trials' address family (run --families): ipv4 | ipv6
  auto operator<=>(const SeriesKey&) const = default;
  // "ebpf pod-pod-cross-node tcp_rr transactionsPerSecond", then " ipv6" for an IPv6 series
  std::string label() const;
};

// A run's point in a series: the median of the cell's valid repetitions; low and high are the
// lowest and highest repetition (the whiskers).
struct Point {
  std::string run_id, git_revision, started_at, environment;
  std::vector<double> values;  // the valid repetitions, in repetition order
  double median = 0, low = 0, high = 0;
};

struct Series {
  SeriesKey key;
  std::vector<Point> points;  // by startedAt, then runId
};

// Empty fields match everything; `environment` matches a fingerprint or its prefix; `family`
// ipv4 or ipv6 (empty: both, each family its own series).
struct SeriesFilter {
  std::string metric, mode, scenario, workload, environment, family;
};

class Store {
 public:
  // For reading: Error(kNotFound) when there is no file. An older schema is migrated.
  static Store open_read(const std::string& path);
  // For adding: the file is created (with its parent directory) when missing.
  static Store open_write(const std::string& path);

  // Adds a run read from `source` in one transaction. A run already stored with the same
  // contents is left (kAlreadyStored); an incomplete stored run (an interrupted or still running
  // `hrbench run`, "complete": false) is replaced by a later state of it (kReplaced); a complete
  // stored run with other contents is refused (Error(kBadInput)): add never rewrites history.
  AddResult add(const results::Run& run, const std::string& source);

  std::vector<RunInfo> runs();
  std::vector<Series> series(const SeriesFilter& filter);
  // The fields a fingerprint stands for (gate::environment_fingerprint), null when unknown.
  nlohmann::json environment(const std::string& fingerprint);
  int schema_version();
  const std::string& path() const { return db_.path(); }
  sql::Db& db() { return db_; }

 private:
  explicit Store(sql::Db db) : db_(std::move(db)) {}
  sql::Db db_;
};

}  // namespace hrb::history
