#pragma once
// The one wrapper over SQLite (libsqlite3) that the history store uses: a connection, prepared
// statements and a transaction guard, each owning its handle (RAII, move-only). Every failure
// throws Error naming the database file and SQLite's message; SQLITE_CORRUPT and SQLITE_NOTADB
// are input errors (kBadInput: the file is not a sound database).
#include <cstdint>
#include <optional>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace hrb::history::sql {

class Stmt;

class Db {
 public:
  enum class Open { kReadOnly, kReadWrite, kCreate };
  // Opens `path` (kCreate: creating it if missing) with extended result codes and a busy timeout
  // (other writers hold the lock: wait up to `busy_ms`, then fail).
  Db(const std::string& path, Open mode, int busy_ms = 30000);
  ~Db();
  Db(Db&& o) noexcept;
  Db& operator=(Db&&) = delete;
  Db(const Db&) = delete;

  // Runs one or more statements without results.
  void exec(const std::string& sql);
  Stmt prepare(const std::string& sql);
  // The first column of the first row of `sql` as an integer (PRAGMA user_version, counts).
  int64_t scalar(const std::string& sql);
  int64_t changes() const;
  // Switches the file to the WAL journal (a no-op once it is). While other connections are
  // opening a new file the switch can answer SQLITE_BUSY without waiting on the busy handler
  // (CI saw it at once, 0.4 s into six processes creating one store; SQLite's docs leave it to
  // the caller to retry): retried here, backing off, until the busy timeout.
  void use_wal();
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }
  // Throws for result code `rc` of an operation on this connection ("<path>: <what>: <message>").
  [[noreturn]] void fail(int rc, const std::string& what) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  int busy_ms_;
};

class Stmt {
 public:
  Stmt(Db& db, const std::string& sql);
  ~Stmt();
  Stmt(Stmt&& o) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;

  // Parameters are numbered from 1, as in SQL's ?1, ?2.
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, double v);
  Stmt& bind(int i, const std::string& v);
  Stmt& bind(int i, const std::optional<std::string>& v);  // NULL when absent
  Stmt& bind_null(int i);
  // Advances: true while there is a row, false when done.
  bool step();
  // Runs a statement that returns no rows, then resets it for the next bind.
  void run();
  void reset();
  // Columns are numbered from 0.
  bool is_null(int c) const;
  int64_t integer(int c) const;
  double real(int c) const;
  std::string text(int c) const;

 private:
  Db* db_;
  sqlite3_stmt* st_ = nullptr;
};

// BEGIN IMMEDIATE (takes the write lock at once, so two writers queue on the busy timeout
// instead of deadlocking on a lock upgrade) … commit(); rolled back when destroyed without a
// commit, so an exception leaves the database as it was.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Db& db_;
  bool open_ = true;
};

}  // namespace hrb::history::sql
