// The history store (history/store.hpp) and `hrbench history`: idempotent import, refusal of bad
// input with nothing changed, parallel writers, a killed add, corrupt / foreign / newer files,
// the migration from schema version 1, series points, and the report's trend charts. Nothing
// needs root: every store lives in the test's own temporary directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/error.hpp"
#include "core/file.hpp"
#include "core/process.hpp"
#include "gate/gate.hpp"
#include "history/detect.hpp"
#include "history/sqlite.hpp"
#include "history/store.hpp"
#include "metrics/stats.hpp"
#include "report/report.hpp"
#include "results/results.hpp"
#include "support/fault.hpp"

using namespace hrb;
namespace fs = std::filesystem;

namespace {

const std::string kFixture =
    std::string(HRB_SOURCE_DIR) + "/tests/fixtures/results/real-run-2026-11-27.json";

// Multiplies every number under `j` by `f`.
void scale(nlohmann::json& j, double f) {
  if (j.is_number_float() || j.is_number_integer() || j.is_number_unsigned())
    j = j.get<double>() * f;
  else if (j.is_structured())
    for (auto& v : j) scale(v, f);
}

// The fixture as run number `i` of a synthetic history: its own runId, commit and start time,
// ebpf's figures times `ebpf_factor`, each trial's times 1 + 2 % noise, and (with `kernel`) another
// kernel in its environment.
results::Run synthetic_run(int i, double ebpf_factor = 1, const std::string& kernel = "",
                           uint64_t seed = 1) {
  static const results::Run base = results::read_results(kFixture);
  results::Run r = base;
  r.run_id = fmt::format("20261201-10{:02d}00-{:04x}", i, i);
  r.started_at = fmt::format("2026-12-01T10:{:02d}:00Z", i);
  r.git_revision = fmt::format("{:07x}c0ffee", 0x1000000 + i);
  if (!kernel.empty()) r.environment.kernel = kernel;
  std::mt19937_64 rng(seed * 1000 + static_cast<uint64_t>(i));
  std::normal_distribution<double> noise(0, 0.02);
  for (auto& t : r.trials)
    if (t.metrics) scale(*t.metrics, (t.mode == "ebpf" ? ebpf_factor : 1) * (1 + noise(rng)));
  return r;
}

std::string bytes_of(const std::string& path) { return read_text_file(path, "test file"); }

class HistoryStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("hrb-history-{}-{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "history.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A results file in the test's directory.
  std::string file(const std::string& name, const results::Run& r) {
    auto p = (dir_ / name).string();
    results::write_results(p, r);
    return p;
  }
  // hrbench ARGS --db <the test's store> (without --db when `db_flag` is false).
  CmdResult hrbench(std::vector<std::string> args, bool db_flag = true) {
    args.insert(args.begin(), HRBENCH_BIN);
    if (db_flag) args.insert(args.end(), {"--db", db_});
    return run_cmd(args, {.check = false});
  }
  // Everything the store holds, as text: runs, trials and figures (what "as before" compares).
  std::string dump() {
    auto s = history::Store::open_read(db_);
    std::string out;
    for (const auto& r : s.runs())
      out += fmt::format("{} {} {} {} {}\n", r.run_id, r.git_revision, r.environment, r.trials,
                         r.valid);
    out += fmt::format("trials {} metrics {}\n", s.db().scalar("SELECT count(*) FROM trials"),
                       s.db().scalar("SELECT count(*) FROM trial_metrics"));
    return out;
  }
  // The names of the directory's files (a refused store must not gain -wal or -journal files).
  std::set<std::string> files() {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.insert(e.path().filename());
    return out;
  }
  void expect_refused(const std::vector<std::string>& args, const std::string& what,
                      bool db_flag = true) {
    const std::string before = bytes_of(db_);
    const auto names = files();
    auto r = hrbench(args, db_flag);
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_NE(r.err.find(db_), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_EQ(bytes_of(db_), before) << "the refused store was changed";
    EXPECT_EQ(files(), names);
  }

  fs::path dir_;
  std::string db_;
};

TEST_F(HistoryStore, AddIsIdempotentByRunId) {
  auto run = synthetic_run(1);
  {
    auto s = history::Store::open_write(db_);
    auto a = s.add(run, "a.json");
    EXPECT_EQ(a.status, history::Added::kAdded);
    EXPECT_EQ(a.run_id, *run.run_id);
    EXPECT_EQ(a.trials, run.trials.size());
  }
  const std::string once = dump();
  {
    auto s = history::Store::open_write(db_);
    EXPECT_EQ(s.add(run, "again.json").status, history::Added::kAlreadyStored);
  }
  EXPECT_EQ(dump(), once);
  EXPECT_NE(once.find(fmt::format("trials {} ", run.trials.size())), std::string::npos) << once;
  // Through the command line: the same file twice in one call, and again.
  auto f = file("run2.json", synthetic_run(2));
  auto r = hrbench({"history", "add", f, f});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("added run 20261201-100200-0002"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("already stored, unchanged"), std::string::npos) << r.out;
  EXPECT_EQ(history::Store::open_read(db_).runs().size(), 2u);
}

TEST_F(HistoryStore, ARunWithoutRunIdIsNamedByItsDigest) {
  auto run = synthetic_run(3);
  run.run_id.reset();
  auto s = history::Store::open_write(db_);
  auto a = s.add(run, "x.json");
  EXPECT_EQ(a.run_id, "fnv-" + history::digest_of(run));
  EXPECT_EQ(s.add(run, "x.json").status, history::Added::kAlreadyStored);
  run.trials.pop_back();  // other contents: another run
  EXPECT_EQ(s.add(run, "y.json").status, history::Added::kAdded);
  EXPECT_EQ(s.runs().size(), 2u);
}

TEST_F(HistoryStore, AnIncompleteRunIsReplacedACompleteOneNever) {
  auto full = synthetic_run(4);
  auto partial = full;
  partial.complete = false;
  partial.trials.resize(10);
  auto s = history::Store::open_write(db_);
  EXPECT_EQ(s.add(partial, "p.json").status, history::Added::kAdded);
  EXPECT_EQ(s.add(full, "f.json").status, history::Added::kReplaced);
  EXPECT_EQ(s.runs().at(0).trials, static_cast<int64_t>(full.trials.size()));
  auto other = full;
  other.trials.pop_back();
  try {
    s.add(other, "other.json");
    FAIL() << "a complete run was replaced";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("already stored with other contents"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(s.runs().at(0).trials, static_cast<int64_t>(full.trials.size()));
}

// An invalid file among several: it is named with the reason, nothing of it is added, the
// others are (each its own transaction), and the exit code says that one failed.
TEST_F(HistoryStore, AnInvalidFileAddsNothingAndIsNamed) {
  const std::string bad =
      std::string(HRB_SOURCE_DIR) + "/tests/fixtures/results/bad-workload-not-a-string.json";
  auto a = file("a.json", synthetic_run(5)), b = file("b.json", synthetic_run(6));
  auto r = hrbench({"history", "add", a, bad, b});
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("workload"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing added from"), std::string::npos) << r.err;
  auto runs = history::Store::open_read(db_).runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].source, a);
  EXPECT_EQ(runs[1].source, b);
}

// Several processes adding different runs to one new store at once: every run is there and the
// store is intact.
TEST_F(HistoryStore, ParallelWritersLoseNothing) {
  constexpr int kWriters = 6, kEach = 3;
  std::vector<std::vector<std::string>> args(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    args[w] = {"history", "add"};
    for (int k = 0; k < kEach; ++k)
      args[w].push_back(file(fmt::format("w{}-{}.json", w, k), synthetic_run(w * kEach + k)));
  }
  std::vector<CmdResult> results(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] { results[w] = hrbench(args[w]); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r.status, 0) << r.err;
  auto s = history::Store::open_read(db_);
  EXPECT_EQ(s.runs().size(), static_cast<size_t>(kWriters * kEach));
  EXPECT_EQ(s.db().scalar("SELECT count(*) FROM trials"),
            static_cast<int64_t>(kWriters * kEach * synthetic_run(0).trials.size()));
  auto check = s.db().prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check.step());
  EXPECT_EQ(check.text(0), "ok");
}

// SIGKILL in the middle of an add's transaction (after its first trial is written): the store is
// as before, byte for byte until it is next opened, and takes the run afterwards.
TEST_F(HistoryStore, AKilledAddLeavesTheStoreAsBefore) {
  {
    auto s = history::Store::open_write(db_);
    s.add(synthetic_run(1), "one.json");
  }
  const std::string before = dump();
  const std::string bytes = bytes_of(db_);
  auto f = file("two.json", synthetic_run(2));
  pid_t pid = test::start_stopped({"history", "add", f, "--db", db_},
                                  {{"HRBENCH_FAULT_STOP_AT", "history-add:trial"}});
  ASSERT_GT(pid, 0);
  // Stopped mid-transaction: the run's first trial is inserted, nothing committed.
  EXPECT_TRUE(fs::exists(db_ + "-wal"));
  test::kill_stopped(pid);
  EXPECT_EQ(bytes_of(db_), bytes);
  EXPECT_EQ(dump(), before);
  auto r = hrbench({"history", "add", f});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(history::Store::open_read(db_).runs().size(), 2u);
}

TEST_F(HistoryStore, ACorruptStoreIsRefusedUnchanged) {
  {
    auto s = history::Store::open_write(db_);
    for (int i = 0; i < 3; ++i) s.add(synthetic_run(i), "r.json");
  }
  // Garbage over every page but the first (the header and schema stay readable).
  {
    const auto size = fs::file_size(db_);
    ASSERT_GT(size, 8192u);
    std::fstream f(db_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    std::string junk(size - 4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  expect_refused({"history", "add", file("new.json", synthetic_run(9))}, "corrupt");
  // Reading it fails too, naming the file, and changes nothing.
  const std::string before = bytes_of(db_);
  auto r = hrbench({"history", "show", "--metric", "transactionsPerSecond", "--mode", "ebpf",
                    "--scenario", "pod-pod-cross-node", "--workload", "tcp_rr"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find(db_), std::string::npos) << r.err;
  EXPECT_EQ(bytes_of(db_), before);
}

TEST_F(HistoryStore, AForeignFileIsRefusedUnchanged) {
  write_text_file(db_, "run_id,value\n1,2\n");
  expect_refused({"history", "add", file("a.json", synthetic_run(1))}, "not an SQLite database");
  expect_refused({"history", "list"}, "not an SQLite database");
  fs::remove(db_);
  {  // another application's SQLite database
    history::sql::Db other(db_, history::sql::Db::Open::kCreate);
    other.exec(
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes "
        "VALUES(1, 'mine')");
  }
  expect_refused({"history", "add", file("b.json", synthetic_run(1))}, "another application");
  expect_refused({"history", "detect"}, "another application");
}

TEST_F(HistoryStore, ANewerSchemaIsRefusedUnchanged) {
  {
    auto s = history::Store::open_write(db_);
    s.add(synthetic_run(1), "r.json");
    s.db().exec(fmt::format("PRAGMA user_version = {}", history::kSchemaVersion + 1));
  }
  expect_refused({"history", "add", file("a.json", synthetic_run(2))}, "newer");
  expect_refused({"history", "list"}, "newer");
  expect_refused({"report", "--history", db_}, "newer", false);
}

// A store of schema version 1 (runs and trials only, made here by hand as version 1 wrote it)
// is migrated on open: its trials' figures become series, and it takes new runs.
TEST_F(HistoryStore, MigratesAVersion1Store) {
  auto run = synthetic_run(1);
  auto doc = results::to_json(run);
  {
    history::sql::Db v1(db_, history::sql::Db::Open::kCreate);
    v1.exec(R"(
PRAGMA journal_mode = WAL;
CREATE TABLE environments(fingerprint TEXT PRIMARY KEY, fields TEXT NOT NULL);
CREATE TABLE runs(run_id TEXT PRIMARY KEY, digest TEXT NOT NULL, git_revision TEXT,
  started_at TEXT, finished_at TEXT, complete INTEGER NOT NULL,
  environment TEXT NOT NULL REFERENCES environments(fingerprint), document TEXT NOT NULL,
  source TEXT, added_at TEXT NOT NULL);
CREATE TABLE trials(run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  idx INTEGER NOT NULL, mode TEXT NOT NULL, scenario TEXT NOT NULL, workload TEXT NOT NULL,
  repetition INTEGER, scan TEXT, valid INTEGER NOT NULL, trial TEXT NOT NULL,
  PRIMARY KEY(run_id, idx));
PRAGMA application_id = 1213350472;
PRAGMA user_version = 1;
)");
    auto fp = gate::environment_fingerprint(run);
    v1.prepare("INSERT INTO environments VALUES(?1, ?2)")
        .bind(1, fp.id)
        .bind(2, fp.fields.dump())
        .run();
    v1.prepare("INSERT INTO runs VALUES(?1, ?2, ?3, ?4, NULL, 1, ?5, '{}', 'v1.json', ?4)")
        .bind(1, *run.run_id)
        .bind(2, history::digest_of(run))
        .bind(3, *run.git_revision)
        .bind(4, *run.started_at)
        .bind(5, fp.id)
        .run();
    auto ins = v1.prepare("INSERT INTO trials VALUES(?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)");
    for (size_t i = 0; i < run.trials.size(); ++i) {
      const auto& t = run.trials[i];
      ins.bind(1, *run.run_id)
          .bind(2, static_cast<int64_t>(i))
          .bind(3, t.mode)
          .bind(4, t.scenario)
          .bind(5, t.workload)
          .bind(6, static_cast<int64_t>(t.rep()))
          .bind(7, static_cast<int64_t>(t.is_valid()))
          .bind(8, doc["trials"][i].dump());
      ins.run();
    }
  }
  EXPECT_EQ(history::kApplicationId, 1213350472);
  auto s = history::Store::open_read(db_);
  EXPECT_EQ(s.schema_version(), history::kSchemaVersion);
  auto series = s.series({"transactionsPerSecond", "ebpf", "pod-pod-cross-node", "tcp_rr", ""});
  ASSERT_EQ(series.size(), 1u);
  ASSERT_EQ(series[0].points.size(), 1u);
  const auto* m = results::find_metric("transactionsPerSecond");
  auto expected = results::finite(results::series(run, "ebpf", "pod-pod-cross-node", "tcp_rr", *m));
  EXPECT_DOUBLE_EQ(series[0].points[0].median, metrics::median(expected));
  // Added once more: already there (the migrated run keeps its identity), and new runs go in.
  auto w = history::Store::open_write(db_);
  EXPECT_EQ(w.add(run, "again.json").status, history::Added::kAlreadyStored);
  EXPECT_EQ(w.add(synthetic_run(2), "new.json").status, history::Added::kAdded);
}

// A point is the median of the cell's valid repetitions, its whiskers their extremes.
TEST_F(HistoryStore, APointIsTheMedianOfTheValidRepetitions) {
  auto run = synthetic_run(1);
  run.trials[0].valid = false;  // the first trial no longer counts
  auto s = history::Store::open_write(db_);
  s.add(run, "r.json");
  const auto& t0 = run.trials[0];
  const auto* m =
      results::find_metric(t0.workload == "tcp_stream" ? "gbitPerSecond" : "transactionsPerSecond");
  auto series = s.series({m->name, t0.mode, t0.scenario, t0.workload, ""});
  ASSERT_EQ(series.size(), 1u);
  const auto& p = series[0].points.at(0);
  auto expected = results::finite(results::series(run, t0.mode, t0.scenario, t0.workload, *m));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(p.values.size(), expected.size());
  EXPECT_DOUBLE_EQ(p.median, metrics::median(expected));
  EXPECT_DOUBLE_EQ(p.low, *std::min_element(expected.begin(), expected.end()));
  EXPECT_DOUBLE_EQ(p.high, *std::max_element(expected.begin(), expected.end()));
  EXPECT_EQ(p.git_revision, *run.git_revision);
}

// A run --families document: every trial of synthetic_run(i) once per family, IPv6's figures
// halved (so that a series mixing the families would show it).
results::Run dual_family_run(int i) {
  auto run = synthetic_run(i);
  const size_t n = run.trials.size();
  for (size_t k = 0; k < n; ++k) {
    auto t = run.trials[k];
    t.family = "ipv6";
    if (t.metrics) scale(*t.metrics, 0.5);
    run.trials.push_back(t);
  }
  return run;
}

// Each family is its own series; --family selects one, and a bad one is refused.
TEST_F(HistoryStore, EachFamilyIsItsOwnSeries) {
  const auto run = dual_family_run(1);
  const auto& t0 = run.trials[0];
  const auto* m =
      results::find_metric(t0.workload == "tcp_stream" ? "gbitPerSecond" : "transactionsPerSecond");
  {
    auto s = history::Store::open_write(db_);
    EXPECT_EQ(s.add(run, "dual.json").trials, run.trials.size());
    auto both = s.series({m->name, t0.mode, t0.scenario, t0.workload, ""});
    ASSERT_EQ(both.size(), 2u);
    EXPECT_EQ(both[0].key.family, "ipv4");
    EXPECT_EQ(both[1].key.family, "ipv6");
    EXPECT_EQ(both[1].key.label(), both[0].key.label() + " ipv6");
    EXPECT_NEAR(both[1].points.at(0).median, both[0].points.at(0).median / 2,
                both[0].points.at(0).median * 1e-9);
    auto v6 = s.series({m->name, t0.mode, t0.scenario, t0.workload, "", "ipv6"});
    ASSERT_EQ(v6.size(), 1u);
    EXPECT_EQ(v6[0].key.family, "ipv6");
  }
  auto r = hrbench({"history", "show", "--metric", m->name, "--mode", t0.mode, "--scenario",
                    t0.scenario, "--workload", t0.workload, "--family", "ipv6", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u) << r.out;
  EXPECT_EQ(j[0]["family"], "ipv6");
  auto bad = hrbench({"history", "detect", "--family", "ipv5"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--family: expected ipv4 or ipv6, got 'ipv5'"), std::string::npos)
      << bad.err;
}

// A store of schema version 2 (IPv4 trials only, no family column) is migrated on open: its
// trials are IPv4 series, and a dual-family run added after it gets both.
TEST_F(HistoryStore, MigratesAVersion2Store) {
  const auto old_run = synthetic_run(1);
  const auto& t0 = old_run.trials[0];
  const auto* m =
      results::find_metric(t0.workload == "tcp_stream" ? "gbitPerSecond" : "transactionsPerSecond");
  {
    auto s = history::Store::open_write(db_);
    s.add(old_run, "old.json");
    // What version 2 wrote: no family column.
    s.db().exec("ALTER TABLE trials DROP COLUMN family; PRAGMA user_version = 2");
  }
  auto s = history::Store::open_write(db_);
  EXPECT_EQ(s.schema_version(), history::kSchemaVersion);
  EXPECT_EQ(s.db().scalar("SELECT count(*) FROM trials WHERE family = 'ipv4'"),
            static_cast<int64_t>(old_run.trials.size()));
  s.add(dual_family_run(2), "dual.json");
  auto v4 = s.series({m->name, t0.mode, t0.scenario, t0.workload, "", "ipv4"});
  auto v6 = s.series({m->name, t0.mode, t0.scenario, t0.workload, "", "ipv6"});
  ASSERT_EQ(v4.size(), 1u);
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v4[0].points.size(), 2u) << "the migrated run and the new one";
  EXPECT_EQ(v6[0].points.size(), 1u) << "the new run's IPv6 trials";
}

// The synthetic history of docs/history.md's screenshot. 20 runs: ebpf 10 % slower from run 12
// on; runs 0-5 in another environment (kernel) with ebpf's figures 30 % higher. detect names run
// 12's commit, show marks it and the break, the report draws both (and is kept in
// <build>/test-output/history-report.html).
TEST_F(HistoryStore, DetectShowAndReportFindTheStepAndTheBreak) {
  {
    auto s = history::Store::open_write(db_);
    for (int i = 0; i < 20; ++i) {
      auto r = synthetic_run(i, (i >= 12 ? 0.9 : 1.0) * (i < 6 ? 1.3 : 1.0),
                             i < 6 ? "Linux 6.1.0-other" : "");
      s.add(r, "r.json");
    }
  }
  const std::string commit12 = *synthetic_run(12).git_revision;
  auto r = hrbench({"history", "detect", "--json", "--mode", "ebpf", "--workload", "tcp_rr",
                    "--scenario", "pod-pod-cross-node", "--metric", "transactionsPerSecond"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto changes = nlohmann::json::parse(r.out);
  ASSERT_EQ(changes.size(), 1u) << r.out;
  EXPECT_EQ(changes[0]["gitRevision"], commit12) << r.out;
  EXPECT_NEAR(changes[0]["ratio"].get<double>(), 0.9, 0.03) << r.out;
  EXPECT_LT(changes[0]["ratioHigh"].get<double>(), 1.0) << r.out;
  // The environment change at run 6 (30 %) is no shift: legacy has no change at all.
  r = hrbench({"history", "detect", "--json", "--mode", "legacy", "--workload", "tcp_rr",
               "--scenario", "pod-pod-cross-node", "--metric", "transactionsPerSecond"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 0u) << r.out;

  r = hrbench({"history", "show", "--metric", "transactionsPerSecond", "--mode", "ebpf",
               "--scenario", "pod-pod-cross-node", "--workload", "tcp_rr"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("environment changed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kernel Linux 6.1.0-other -> "), std::string::npos) << r.out;
  auto line = r.out.substr(r.out.find(commit12));
  line = line.substr(0, line.find('\n'));
  EXPECT_NE(line.find("<- shift -"), std::string::npos) << r.out;

  auto h = report::read_history(db_);
  EXPECT_EQ(h.runs, 20u);
  auto html = report::html({}, &h);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("environment changed"), std::string::npos);
  EXPECT_NE(html.find("ebpf -10."), std::string::npos);  // the shift's label on its chart
  EXPECT_NE(html.find(commit12.substr(0, 8)), std::string::npos);
  // Kept for a look (docs/history.md, "Screenshot": scripts/report-screenshot this file).
  fs::create_directories(std::string(HRB_BINARY_DIR) + "/test-output");
  write_text_file(std::string(HRB_BINARY_DIR) + "/test-output/history-report.html", html);
}

TEST_F(HistoryStore, ReadingAMissingStoreSaysSoAndCreatesNothing) {
  auto r = hrbench({"history", "list"});
  EXPECT_EQ(r.status, 6) << r.err;
  EXPECT_NE(r.err.find("no history store " + db_), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(db_));
}

}  // namespace
