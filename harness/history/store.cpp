#include "history/store.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/process.hpp"
#include "gate/gate.hpp"
#include "metrics/stats.hpp"
#include "results/results.hpp"

namespace hrb::history {

namespace fs = std::filesystem;

namespace {

// The migrations, in order: kMigrations[v] takes a store from version v to v + 1. A new version
// appends one (and raises kSchemaVersion); none is ever edited, since stores of that version
// exist.
using Migration = void (*)(sql::Db&);

// 0 -> 1: runs, their environments and trials (each trial's JSON as the results file holds it).
void create_v1(sql::Db& db) {
  db.exec(R"(
CREATE TABLE environments(
  fingerprint TEXT PRIMARY KEY,
  fields TEXT NOT NULL);
CREATE TABLE runs(
  run_id TEXT PRIMARY KEY,
  digest TEXT NOT NULL,
  git_revision TEXT,
  started_at TEXT,
  finished_at TEXT,
  complete INTEGER NOT NULL,
  environment TEXT NOT NULL REFERENCES environments(fingerprint),
  document TEXT NOT NULL,
  source TEXT,
  added_at TEXT NOT NULL);
CREATE TABLE trials(
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  mode TEXT NOT NULL,
  scenario TEXT NOT NULL,
  workload TEXT NOT NULL,
  repetition INTEGER,
  scan TEXT,
  valid INTEGER NOT NULL,
  trial TEXT NOT NULL,
  PRIMARY KEY(run_id, idx));
)");
}

// The catalogue's metrics of one trial's JSON, inserted into trial_metrics.
void insert_metrics(sql::Stmt& ins, const std::string& run_id, int64_t idx,
                    const nlohmann::json& trial) {
  results::Trial t;
  if (auto m = trial.find("metrics"); m != trial.end() && m->is_object()) t.metrics = *m;
  for (const auto& m : results::metric_catalogue())
    if (auto v = results::metric_value(t, m)) {
      ins.bind(1, run_id).bind(2, idx).bind(3, m.name).bind(4, *v);
      ins.run();
    }
}

// The columns of a trials row but its family: run id, index in the document's trials, mode,
// scenario, workload, repetition, scan ("param=value"), valid, the trial's JSON.
void bind_trial(sql::Stmt& st, const std::string& run_id, int64_t idx, const results::Trial& t,
                const nlohmann::json& json) {
  st.bind(1, run_id).bind(2, idx).bind(3, t.mode).bind(4, t.scenario).bind(5, t.workload);
  if (t.repetition)
    st.bind(6, static_cast<int64_t>(*t.repetition));
  else
    st.bind_null(6);
  if (t.scan)
    st.bind(7, t.scan->param + "=" + std::to_string(t.scan->value));
  else
    st.bind_null(7);
  st.bind(8, static_cast<int64_t>(t.is_valid())).bind(9, json.dump());
}

// 1 -> 2: every figure of the metric catalogue in its own row (what series read), filled from
// the trials already stored.
void add_trial_metrics(sql::Db& db) {
  db.exec(R"(
CREATE TABLE trial_metrics(
  run_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  metric TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY(run_id, idx, metric),
  FOREIGN KEY(run_id, idx) REFERENCES trials(run_id, idx) ON DELETE CASCADE);
CREATE INDEX trial_metrics_by_metric ON trial_metrics(metric);
)");
  auto sel = db.prepare("SELECT run_id, idx, trial FROM trials");
  auto ins =
      db.prepare("INSERT INTO trial_metrics(run_id, idx, metric, value) VALUES(?1,?2,?3,?4)");
  while (sel.step()) {
    auto j = nlohmann::json::parse(sel.text(2), nullptr, false);
    if (j.is_discarded())
      throw Error(db.path() + ": trial " + sel.text(0) + "[" + std::to_string(sel.integer(1)) +
                      "] is not JSON; the store is damaged and was not migrated",
                  ExitCode::kBadInput);
    insert_metrics(ins, sel.text(0), sel.integer(1), j);
  }
}

// 2 -> 3: each trial's address family; the stored trials are IPv4 (version 2 stored no other:
// it left out the IPv6 trials of a run --families document, and kept no copy of them).
void add_trial_family(sql::Db& db) {
  db.exec("ALTER TABLE trials ADD COLUMN family TEXT NOT NULL DEFAULT 'ipv4'");
}

const Migration kMigrations[] = {create_v1, add_trial_metrics, add_trial_family};
static_assert(std::size(kMigrations) == kSchemaVersion);

// A store of a newer schema than this build knows: refused, unchanged.
void refuse_newer_schema(const std::string& path, int64_t version) {
  if (version > kSchemaVersion)
    throw Error(fmt::format("{}: history schema version {} is newer than this hrbench reads ({}); "
                            "use a newer hrbench. Nothing was changed",
                            path, version, kSchemaVersion),
                ExitCode::kBadInput);
}

// The store's file is checked from its header (the first 100 bytes, SQLite's file format) before
// SQLite opens it: a file that is not SQLite, another application's database or a newer schema
// is not ours to touch, and opening it (even read-only, in WAL mode) could leave files next to
// it. An empty file is a new store (SQLite writes its header on the first transaction). The
// header's version may lag a WAL's newest commit: check_store looks again once it is open.
uint32_t big_endian(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
void check_header(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read the history store " + path, ExitCode::kBadInput);
  unsigned char h[100] = {};
  f.read(reinterpret_cast<char*>(h), sizeof h);
  if (f.gcount() == 0) return;
  if (f.gcount() < 100 || std::memcmp(h, "SQLite format 3", 16) != 0)
    throw Error(path + ": not a history store (not an SQLite database); nothing was changed",
                ExitCode::kBadInput);
  const auto version = static_cast<int32_t>(big_endian(h + 60));
  const auto app = static_cast<int32_t>(big_endian(h + 68));
  if (app != 0 && app != kApplicationId)
    throw Error(fmt::format("{}: not a history store (an SQLite database of another application: "
                            "application_id {:#x}); nothing was changed",
                            path, app),
                ExitCode::kBadInput);
  refuse_newer_schema(path, version);
}

// What the open file is, read without writing: its schema version; throws for a foreign, newer
// or (with `deep`: PRAGMA quick_check, before a write) corrupt file.
int check_store(sql::Db& db, bool deep) {
  const std::string& path = db.path();
  int64_t app = 0, version = 0, tables = 0;
  std::string check = "ok";
  try {
    app = db.scalar("PRAGMA application_id");
    version = db.scalar("PRAGMA user_version");
    tables = db.scalar("SELECT count(*) FROM sqlite_schema");
    if (deep) {
      auto st = db.prepare("PRAGMA quick_check");
      check = st.step() ? st.text(0) : "no answer";
    }
  } catch (const Error& e) {
    if (e.code() != ExitCode::kBadInput) throw;  // busy, I/O: not the file's fault
    check = e.what();
  }
  if (check != "ok")
    throw Error(path + ": the history store is corrupt (" + check + "); nothing was changed",
                ExitCode::kBadInput);
  if (app != kApplicationId && !(app == 0 && version == 0 && tables == 0))
    throw Error(fmt::format("{}: not a history store (an SQLite database of another application: "
                            "application_id {:#x}, {} schema objects); nothing was changed",
                            path, app, tables),
                ExitCode::kBadInput);
  refuse_newer_schema(path, version);
  return static_cast<int>(version);
}

// Brings the schema to kSchemaVersion in one transaction that first checks the file again
// (quick_check included; another process may have created or migrated it meanwhile): a refusal
// rolls back with nothing written. Then the WAL journal (persistent in the file once set; only
// after the check, as switching it rewrites the header).
void migrate(sql::Db& db) {
  {
    sql::Transaction tx(db);
    int version = check_store(db, true);
    if (version < kSchemaVersion) {
      for (int v = version; v < kSchemaVersion; ++v) kMigrations[v](db);
      db.exec(fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {}", kApplicationId,
                          kSchemaVersion));
      tx.commit();
    }
  }
  db.use_wal();
}

// A connection for reading and writing (a read-write connection that only reads leaves no
// -wal or -shm file behind when it closes, a read-only one may), or read-only when the file may
// not be written.
sql::Db open_file(const std::string& path, sql::Db::Open mode) {
  try {
    sql::Db db(path, mode);
    db.exec("PRAGMA foreign_keys = ON");
    return db;
  } catch (const Error&) {
    if (mode != sql::Db::Open::kReadWrite || access(path.c_str(), W_OK) == 0) throw;
    return sql::Db(path, sql::Db::Open::kReadOnly);
  }
}

}  // namespace

std::string digest_of(const results::Run& run) {
  return fmt::format("{:016x}", fnv1a(results::to_json(run).dump()));
}

std::string run_id_of(const results::Run& run) {
  return run.run_id && !run.run_id->empty() ? *run.run_id : "fnv-" + digest_of(run);
}

std::string SeriesKey::label() const {
  return fmt::format("{} {} {} {}{}{}", mode, scenario, workload, metric,
                     scan.empty() ? "" : " " + scan, family == "ipv4" ? "" : " " + family);
}

Store Store::open_read(const std::string& path) {
  if (!fs::exists(path))
    throw Error("no history store " + path + " (hrbench history add creates it)",
                ExitCode::kNotFound);
  check_header(path);
  sql::Db db = open_file(path, sql::Db::Open::kReadWrite);
  if (check_store(db, false) < kSchemaVersion) migrate(db);  // an older schema (or an empty file)
  return Store(std::move(db));
}

Store Store::open_write(const std::string& path) {
  if (fs::exists(path))
    check_header(path);
  else if (auto dir = fs::path(path).parent_path(); !dir.empty())
    fs::create_directories(dir);
  sql::Db db = open_file(path, sql::Db::Open::kCreate);
  migrate(db);
  return Store(std::move(db));
}

int Store::schema_version() { return static_cast<int>(db_.scalar("PRAGMA user_version")); }

AddResult Store::add(const results::Run& run, const std::string& source) {
  AddResult out;
  out.run_id = run_id_of(run);
  out.trials = run.trials.size();
  const std::string digest = digest_of(run);
  nlohmann::json doc = results::to_json(run);
  nlohmann::json trials = doc["trials"];
  doc.erase("trials");
  const auto fp = gate::environment_fingerprint(run);

  sql::Transaction tx(db_);
  {
    auto q = db_.prepare("SELECT digest, complete, source, added_at FROM runs WHERE run_id = ?1");
    q.bind(1, out.run_id);
    if (q.step()) {
      if (q.text(0) == digest) {
        out.status = Added::kAlreadyStored;
        return out;  // the transaction rolls back: nothing was written
      }
      if (q.integer(1))
        throw Error(fmt::format("{}: run {} is already stored with other contents (added from {} "
                                "at {}); history add does not replace a complete run",
                                source, out.run_id, q.text(2), q.text(3)),
                    ExitCode::kBadInput);
      out.status = Added::kReplaced;
    }
  }
  if (out.status == Added::kReplaced) {
    auto del = db_.prepare("DELETE FROM runs WHERE run_id = ?1");
    del.bind(1, out.run_id).run();
  }
  auto env = db_.prepare("INSERT OR IGNORE INTO environments(fingerprint, fields) VALUES(?1, ?2)");
  env.bind(1, fp.id).bind(2, fp.fields.dump()).run();
  auto ins = db_.prepare(
      "INSERT INTO runs(run_id, digest, git_revision, started_at, finished_at, complete, "
      "environment, document, source, added_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
  ins.bind(1, out.run_id)
      .bind(2, digest)
      .bind(3, run.git_revision)
      .bind(4, run.started_at)
      .bind(5, run.finished_at)
      .bind(6, static_cast<int64_t>(run.complete.value_or(false)))
      .bind(7, fp.id)
      .bind(8, doc.dump())
      .bind(9, source)
      .bind(10, log::iso_now())
      .run();
  auto tr = db_.prepare(
      "INSERT INTO trials(run_id, idx, mode, scenario, workload, repetition, scan, valid, trial, "
      "family) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
  auto met =
      db_.prepare("INSERT INTO trial_metrics(run_id, idx, metric, value) VALUES(?1,?2,?3,?4)");
  for (size_t i = 0; i < run.trials.size(); ++i) {
    const auto& t = run.trials[i];
    // Each family is its own series (SeriesKey::family): none mixes them.
    const auto idx = static_cast<int64_t>(i);
    bind_trial(tr, out.run_id, idx, t, trials[i]);
    tr.bind(10, t.fam()).run();
    insert_metrics(met, out.run_id, idx, trials[i]);
    // Test hook: HRBENCH_FAULT_STOP_AT=history-add:trial stops here, mid-transaction, after the
    // first trial (a test SIGKILLs the add and finds the store as before).
    fault_point("history-add:trial");
  }
  tx.commit();
  return out;
}

std::vector<RunInfo> Store::runs() {
  std::vector<RunInfo> out;
  auto q = db_.prepare(
      "SELECT r.run_id, coalesce(r.git_revision, ''), coalesce(r.started_at, ''), r.environment, "
      "coalesce(r.source, ''), r.added_at, r.complete, "
      "(SELECT count(*) FROM trials t WHERE t.run_id = r.run_id), "
      "(SELECT count(*) FROM trials t WHERE t.run_id = r.run_id AND t.valid) "
      "FROM runs r ORDER BY r.started_at, r.run_id");
  while (q.step())
    out.push_back({.run_id = q.text(0),
                   .git_revision = q.text(1),
                   .started_at = q.text(2),
                   .environment = q.text(3),
                   .source = q.text(4),
                   .added_at = q.text(5),
                   .complete = q.integer(6) != 0,
                   .trials = q.integer(7),
                   .valid = q.integer(8)});
  return out;
}

std::vector<Series> Store::series(const SeriesFilter& f) {
  auto q = db_.prepare(
      "SELECT m.metric, t.mode, t.scenario, t.workload, coalesce(t.scan, ''), r.run_id, "
      "coalesce(r.git_revision, ''), coalesce(r.started_at, ''), r.environment, m.value, "
      "t.family "
      "FROM trial_metrics m JOIN trials t ON t.run_id = m.run_id AND t.idx = m.idx "
      "JOIN runs r ON r.run_id = m.run_id "
      "WHERE t.valid AND (?1 = '' OR m.metric = ?1) AND (?2 = '' OR t.mode = ?2) "
      "AND (?3 = '' OR t.scenario = ?3) AND (?4 = '' OR t.workload = ?4) "
      "AND substr(r.environment, 1, length(?5)) = ?5 AND (?6 = '' OR t.family = ?6) "
      "ORDER BY r.started_at, r.run_id, t.repetition, t.idx");
  q.bind(1, f.metric)
      .bind(2, f.mode)
      .bind(3, f.scenario)
      .bind(4, f.workload)
      .bind(5, f.environment)
      .bind(6, f.family);
  std::map<SeriesKey, Series> by_key;
  while (q.step()) {
    SeriesKey k{q.text(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(10)};
    auto& s = by_key[k];
    s.key = k;
    const std::string run_id = q.text(5);
    if (s.points.empty() || s.points.back().run_id != run_id)
      s.points.push_back({.run_id = run_id,
                          .git_revision = q.text(6),
                          .started_at = q.text(7),
                          .environment = q.text(8)});
    s.points.back().values.push_back(q.real(9));
  }
  std::vector<Series> out;
  for (auto& [k, s] : by_key) {
    for (auto& p : s.points) {
      p.median = metrics::median(p.values);
      p.low = *std::min_element(p.values.begin(), p.values.end());
      p.high = *std::max_element(p.values.begin(), p.values.end());
    }
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json Store::environment(const std::string& fingerprint) {
  auto q = db_.prepare("SELECT fields FROM environments WHERE fingerprint = ?1");
  q.bind(1, fingerprint);
  return q.step() ? nlohmann::json::parse(q.text(0), nullptr, false) : nlohmann::json();
}

}  // namespace hrb::history
