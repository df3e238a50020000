#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "db.hpp"
#include "keymaster/common/text.hpp"
#include "keymaster/ledger/ledger.hpp"

namespace keymaster::ledger::detail {
namespace {

//! How long a statement waits for another process's lock on the ledger.
constexpr std::chrono::milliseconds kBusyTimeout{5000};


class SqliteQuery final : public Query {
public:
    SqliteQuery(sqlite3* db, const std::string& sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
            throw LedgerError(std::string("ledger: ") + sqlite3_errmsg(db));
    }
    // sqlite3_finalize repeats the last step's error, which step() has already thrown.
    ~SqliteQuery() override { (void)sqlite3_finalize(s_); }
    SqliteQuery(const SqliteQuery&) = delete;
    SqliteQuery& operator=(const SqliteQuery&) = delete;

    void bind_text(int i, const std::string& v) override {
        check(sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    void bind_i64(int i, std::int64_t v) override { check(sqlite3_bind_int64(s_, i, v)); }
    void bind_real(int i, double v) override { check(sqlite3_bind_double(s_, i, v)); }
    void bind_null(int i) override { check(sqlite3_bind_null(s_, i)); }
    bool step() override {
        const int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw LedgerError(std::string("ledger: ") + sqlite3_errmsg(db_));
    }
    std::string text(int c) const override {
        auto* p = sqlite3_column_text(s_, c);
        return p ? reinterpret_cast<const char*>(p) : "";
    }
    std::int64_t i64(int c) const override { return sqlite3_column_int64(s_, c); }
    double real(int c) const override { return sqlite3_column_double(s_, c); }
    bool null(int c) const override { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
    // sqlite3_reset repeats the last step's error, which step() has already thrown.
    void reset() override { (void)sqlite3_reset(s_); }

private:
    void check(int rc) {
        if (rc != SQLITE_OK) throw LedgerError(std::string("ledger: cannot bind a value: ") + sqlite3_errmsg(db_));
    }
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
};

class SqliteDb final : public Db {
public:
    explicit SqliteDb(std::string path) : path_(std::move(path)) {
        if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                            nullptr) != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "cannot open";
            (void)sqlite3_close_v2(db_);  // always SQLITE_OK (a null handle is a no-op)
            db_ = nullptr;
            throw LedgerError("ledger " + path_ + ": " + msg);
        }
        try {
            if (sqlite3_busy_timeout(db_, static_cast<int>(kBusyTimeout.count())) != SQLITE_OK)
                throw LedgerError("ledger " + path_ + ": " + sqlite3_errmsg(db_));
            use_wal();
            exec("PRAGMA synchronous=FULL");
        } catch (...) {
            (void)sqlite3_close_v2(db_);  // (no destructor runs for a constructor that throws: a file that is not a database)
            db_ = nullptr;
            throw;
        }
    }
    // close_v2 always returns SQLITE_OK for a valid handle (it defers until statements are finalized).
    ~SqliteDb() override { (void)sqlite3_close_v2(db_); }
    SqliteDb(const SqliteDb&) = delete;
    SqliteDb& operator=(const SqliteDb&) = delete;

    void exec(const std::string& sql) override {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
            std::string msg = err ? err : "unknown error";
            sqlite3_free(err);
            throw LedgerError("ledger " + path_ + ": " + msg);
        }
    }
    std::unique_ptr<Query> prepare(const std::string& sql) override { return std::make_unique<SqliteQuery>(db_, sql); }
    void begin() override { exec("BEGIN IMMEDIATE"); }
    void commit() override { exec("COMMIT"); }  // synchronous=FULL: on disk when this returns
    void rollback() override {
        if (sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr) != SQLITE_OK)
            throw LedgerError("ledger " + path_ + ": rollback failed after an error: " + sqlite3_errmsg(db_));
    }
    const std::string& where() const override { return path_; }
    const char* now_sql() const override { return "((julianday('now') - 2440587.5) * 86400.0)"; }
    const char* for_update() const override { return ""; }  // BEGIN IMMEDIATE: one writer at a time
    const char* for_share() const override { return ""; }

    // Columns added after the first release (added_columns): a ledger written by an earlier
    // version opens and gains them. Read first (a current ledger is not written to); the change itself in one write
    // transaction that checks again, so two processes opening an old ledger at once (the daemon
    // starting while `history` runs) add the column once.
    void create_schema() override {
        const SchemaTypes types{"INTEGER PRIMARY KEY", "REAL", "INTEGER", " WITHOUT ROWID"};
        exec(schema_sql(types));
        const auto columns = added_columns(types);
        if (std::all_of(columns.begin(), columns.end(), [&](const Column& c) { return has_column(c.name); })) return;
        begin();
        try {
            for (const auto& c : columns)
                if (!has_column(c.name)) exec(std::string("ALTER TABLE topups ADD COLUMN ") + c.name + " " + c.type);
            commit();
        } catch (...) {
            rollback();
            throw;
        }
    }

private:
    bool has_column(const char* name) {
        SqliteQuery info(db_, "PRAGMA table_info(topups)");
        bool found = false;
        while (info.step()) found |= info.text(1) == name;
        return found;
    }

    // The first opener of a new ledger switches it to WAL (later ones find it so: the mode is kept
    // in the file). The switch reads the file first, so while another process is writing it (the
    // daemon starting while `history` runs, both creating the schema) SQLite answers "database is
    // locked" at once rather than wait on a possible deadlock; ask again, up to the busy timeout.
    void use_wal() {
        const auto deadline = keymaster::system_clock().steady() + kBusyTimeout;
        for (;;) {
            std::string mode;
            char* err = nullptr;
            const int rc = sqlite3_exec(
                db_, "PRAGMA journal_mode=WAL",
                [](void* out, int n, char** values, char**) {
                    if (n > 0 && values[0]) *static_cast<std::string*>(out) = values[0];
                    return 0;
                },
                &mode, &err);
            const std::string msg = err ? err : sqlite3_errstr(rc);
            sqlite3_free(err);
            if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && keymaster::system_clock().steady() < deadline) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
                continue;
            }
            if (rc != SQLITE_OK) throw LedgerError("ledger " + path_ + ": " + msg);
            if (to_lower(mode) != "wal")
                throw LedgerError("ledger " + path_ + ": cannot use WAL journaling (the journal mode stays " + mode + ")");
            return;
        }
    }

    std::string path_;
    sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<Db> open_sqlite(const std::string& path) { return std::make_unique<SqliteDb>(path); }

}  // namespace keymaster::ledger::detail
