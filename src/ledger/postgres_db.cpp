#include <libpq-fe.h>

#include <charconv>
#include <cstdlib>
#include <optional>
#include <vector>

#include "db.hpp"
#include "keymaster/ledger/ledger.hpp"

namespace keymaster::ledger::detail {
namespace {

// Created under an advisory lock, so that processes opening a new ledger at once (two replicas
// starting) create it once.
constexpr const char* kSchemaLock = "SELECT pg_advisory_xact_lock(7290412);\n";

// `?` (numbered in order) and `?N` as Postgres' `$N`; string literals are left alone.
std::string dollar_params(const std::string& sql) {
    std::string out;
    out.reserve(sql.size() + 16);
    int next = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (c == '\'') quoted = !quoted;
        if (c != '?' || quoted) {
            out += c;
            continue;
        }
        out += '$';
        if (i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') continue;  // ?N: the digits follow
        out += std::to_string(++next);
    }
    return out;
}

std::string error_of(const PGconn* conn) {
    std::string m = conn ? PQerrorMessage(conn) : "out of memory";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
}

class PgQuery final : public Query {
public:
    PgQuery(PGconn* conn, const std::string& where, const std::string& sql)
        : conn_(conn), where_(where), sql_(dollar_params(sql)) {}
    ~PgQuery() override { clear(); }
    PgQuery(const PgQuery&) = delete;
    PgQuery& operator=(const PgQuery&) = delete;

    void bind_text(int i, const std::string& v) override { slot(i) = v; }
    void bind_i64(int i, std::int64_t v) override { slot(i) = std::to_string(v); }
    void bind_real(int i, double v) override {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back the same
        slot(i) = std::string(buf, r.ptr);
    }
    void bind_null(int i) override { slot(i) = std::nullopt; }
    bool step() override {
        if (!res_) run();
        return ++row_ < PQntuples(res_);
    }
    std::string text(int c) const override { return null(c) ? std::string() : std::string(PQgetvalue(res_, row_, c)); }
    std::int64_t i64(int c) const override { return null(c) ? 0 : std::strtoll(PQgetvalue(res_, row_, c), nullptr, 10); }
    double real(int c) const override { return null(c) ? 0.0 : std::strtod(PQgetvalue(res_, row_, c), nullptr); }
    bool null(int c) const override { return PQgetisnull(res_, row_, c) != 0; }
    void reset() override { clear(); }

private:
    std::optional<std::string>& slot(int i) {
        if (static_cast<std::size_t>(i) > params_.size()) params_.resize(static_cast<std::size_t>(i));
        return params_[static_cast<std::size_t>(i - 1)];
    }
    void run() {
        std::vector<const char*> values;
        values.reserve(params_.size());
        for (const auto& p : params_) values.push_back(p ? p->c_str() : nullptr);
        res_ = PQexecParams(conn_, sql_.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
        const auto st = res_ ? PQresultStatus(res_) : PGRES_FATAL_ERROR;
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            const std::string msg = res_ ? PQresultErrorMessage(res_) : error_of(conn_);
            clear();
            throw LedgerError("ledger " + where_ + ": " + (msg.empty() ? error_of(conn_) : msg.substr(0, msg.find_last_not_of("\n ") + 1)));
        }
        row_ = -1;
    }
    void clear() {
        if (res_) PQclear(res_);
        res_ = nullptr;
        row_ = -1;
    }
    PGconn* conn_;
    const std::string& where_;
    std::string sql_;
    std::vector<std::optional<std::string>> params_;
    PGresult* res_ = nullptr;
    int row_ = -1;
};

class PostgresDb final : public Db {
public:
    explicit PostgresDb(const std::string& url) : where_(redact_url(url)) {
        conn_ = PQconnectdb(url.c_str());
        if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
            const std::string msg = error_of(conn_);
            if (conn_) PQfinish(conn_);
            conn_ = nullptr;
            throw LedgerError("ledger " + where_ + ": cannot connect: " + msg);
        }
        exec("SET client_min_messages = warning");  // no NOTICE for "already exists" on every start
    }
    ~PostgresDb() override {
        if (conn_) PQfinish(conn_);
    }
    PostgresDb(const PostgresDb&) = delete;
    PostgresDb& operator=(const PostgresDb&) = delete;

    void exec(const std::string& sql) override {
        ensure();
        PGresult* r = PQexec(conn_, sql.c_str());
        const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        std::string msg = r ? PQresultErrorMessage(r) : "";
        if (r) PQclear(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            if (msg.empty()) msg = error_of(conn_);
            while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
            throw LedgerError("ledger " + where_ + ": " + msg);
        }
    }
    std::unique_ptr<Query> prepare(const std::string& sql) override {
        ensure();
        return std::make_unique<PgQuery>(conn_, where_, sql);
    }
    void begin() override { exec("BEGIN"); }
    void commit() override { exec("COMMIT"); }
    void rollback() override {
        if (PQstatus(conn_) != CONNECTION_OK) return;  // the server ended the transaction with the connection
        PGresult* r = PQexec(conn_, "ROLLBACK");
        const bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (r) PQclear(r);
        if (!ok) throw LedgerError("ledger " + where_ + ": rollback failed after an error: " + error_of(conn_));
    }
    void create_schema() override {
        exec(std::string("BEGIN;\n") + kSchemaLock + schema_sql({"BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION", "BIGINT", ""}) +
             "COMMIT;");
    }
    const std::string& where() const override { return where_; }
    const char* now_sql() const override { return "CAST(extract(epoch from clock_timestamp()) AS DOUBLE PRECISION)"; }
    const char* for_update() const override { return " FOR UPDATE"; }
    const char* for_share() const override { return " FOR SHARE"; }

private:
    // A connection the server closed (a restart) is opened again before the next statement; the
    // statement that met the closed one has already failed (nothing is retried blind). A writer's
    // lease is checked in every write transaction (the fence): nothing to take again here.
    void ensure() {
        if (PQstatus(conn_) == CONNECTION_OK) return;
        PQreset(conn_);
        if (PQstatus(conn_) != CONNECTION_OK) throw LedgerError("ledger " + where_ + ": cannot connect: " + error_of(conn_));
        exec("SET client_min_messages = warning");
    }

    std::string where_;
    PGconn* conn_ = nullptr;
};

}  // namespace

std::unique_ptr<Db> open_postgres(const std::string& url) { return std::make_unique<PostgresDb>(url); }

std::string redact_url(const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const auto at = url.find('@', scheme + 3);
    const auto slash = url.find('/', scheme + 3);
    std::string out = url;
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
        const auto colon = url.find(':', scheme + 3);
        if (colon != std::string::npos && colon < at) out = url.substr(0, colon + 1) + "***" + url.substr(at);
    }
    // A password in the query string (?password=...) too.
    const auto q = out.find("password=");
    if (q != std::string::npos) {
        const auto end = out.find('&', q);
        out = out.substr(0, q + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
    }
    return out;
}

}  // namespace keymaster::ledger::detail
