#include "history/sqlite.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/error.hpp"

namespace hrb::history::sql {

using namespace std::chrono_literals;

namespace {
bool bad_file(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}
}  // namespace

Db::Db(const std::string& path, Open mode, int busy_ms) : path_(path), busy_ms_(busy_ms) {
  int flags = mode == Open::kReadOnly    ? SQLITE_OPEN_READONLY
              : mode == Open::kReadWrite ? SQLITE_OPEN_READWRITE
                                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw Error(path + ": cannot open the history store: " + msg,
                bad_file(rc) ? ExitCode::kBadInput : ExitCode::kFailure);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, busy_ms);
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

Db::Db(Db&& o) noexcept : db_(o.db_), path_(std::move(o.path_)), busy_ms_(o.busy_ms_) {
  o.db_ = nullptr;
}

void Db::fail(int rc, const std::string& what) const {
  std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  throw Error(path_ + ": " + what + ": " + msg + " (SQLite " + std::to_string(rc) + ")",
              bad_file(rc) ? ExitCode::kBadInput : ExitCode::kFailure);
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw Error(
        path_ + ": " + msg + " (SQLite " + std::to_string(rc) + ", in: " + sql.substr(0, 60) + ")",
        bad_file(rc) ? ExitCode::kBadInput : ExitCode::kFailure);
  }
}

Stmt Db::prepare(const std::string& sql) { return Stmt(*this, sql); }

int64_t Db::scalar(const std::string& sql) {
  Stmt s(*this, sql);
  return s.step() ? s.integer(0) : 0;
}

void Db::use_wal() {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::milliseconds(busy_ms_);
  for (auto pause = std::chrono::milliseconds(1);; pause = std::min(pause * 2, 100ms)) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode = WAL", -1, &st, nullptr);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(st);
      sqlite3_finalize(st);
    }
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) return;
    if ((rc & 0xff) != SQLITE_BUSY || clock::now() >= deadline)
      fail(rc, "switching to the WAL journal");
    std::this_thread::sleep_for(pause);
  }
}

int64_t Db::changes() const { return sqlite3_changes64(db_); }

Stmt::Stmt(Db& db, const std::string& sql) : db_(&db) {
  int rc = sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &st_, nullptr);
  if (rc != SQLITE_OK) db.fail(rc, "preparing '" + sql.substr(0, 60) + "'");
}

Stmt::~Stmt() {
  if (st_) sqlite3_finalize(st_);
}

Stmt::Stmt(Stmt&& o) noexcept : db_(o.db_), st_(o.st_) { o.st_ = nullptr; }

Stmt& Stmt::bind(int i, int64_t v) {
  if (int rc = sqlite3_bind_int64(st_, i, v); rc != SQLITE_OK) db_->fail(rc, "bind");
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  if (int rc = sqlite3_bind_double(st_, i, v); rc != SQLITE_OK) db_->fail(rc, "bind");
  return *this;
}
Stmt& Stmt::bind(int i, const std::string& v) {
  if (int rc = sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
      rc != SQLITE_OK)
    db_->fail(rc, "bind");
  return *this;
}
Stmt& Stmt::bind(int i, const std::optional<std::string>& v) {
  return v ? bind(i, *v) : bind_null(i);
}
Stmt& Stmt::bind_null(int i) {
  if (int rc = sqlite3_bind_null(st_, i); rc != SQLITE_OK) db_->fail(rc, "bind");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_->fail(rc, std::string("executing '") + sqlite3_sql(st_) + "'");
}

void Stmt::run() {
  while (step()) {
  }
  reset();
}

void Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

bool Stmt::is_null(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL; }
int64_t Stmt::integer(int c) const { return sqlite3_column_int64(st_, c); }
double Stmt::real(int c) const { return sqlite3_column_double(st_, c); }
std::string Stmt::text(int c) const {
  const auto* p = sqlite3_column_text(st_, c);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(st_, c)))
           : std::string();
}

Transaction::Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (open_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {  // the connection is gone: SQLite rolls back what was not committed
    }
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  open_ = false;
}

}  // namespace hrb::history::sql
