// The ledger's storage: one SQL interface, two databases (SQLite, Postgres). Not a public header.
#pragma once

#include <cstdint>
#include "keymaster/common/fault.hpp"
#include <memory>
#include <string>
#include <vector>

namespace keymaster::ledger::detail {

//! One statement of a Db, its parameters written `?` (numbered in order) and bound by 1-based
//! index. Throws LedgerError on any failure.
class Query {
public:
    virtual ~Query() = default;
    virtual void bind_text(int i, const std::string& v) = 0;
    virtual void bind_i64(int i, std::int64_t v) = 0;
    virtual void bind_real(int i, double v) = 0;
    virtual void bind_null(int i) = 0;
    //! Runs the statement (first call) or moves to the next row; whether a row is there.
    virtual bool step() = 0;
    //! Runs a statement whose rows nobody reads (a write). Inside a transaction it may only be
    //! queued: its error then fails a later statement of the transaction, or its commit.
    virtual void execute() { (void)step(); }
    //! Column c of the current row ("" / 0 for NULL).
    [[nodiscard]] virtual std::string text(int c) const = 0;
    [[nodiscard]] virtual std::int64_t i64(int c) const = 0;
    [[nodiscard]] virtual double real(int c) const = 0;
    [[nodiscard]] virtual bool null(int c) const = 0;
    //! Ready to run again with new bindings.
    virtual void reset() = 0;
};

//! A connection to the ledger's database. Single-threaded. Throws LedgerError on any failure,
//! with a message that names the database (a Postgres URL without its password) and no secret.
class Db {
public:
    virtual ~Db() = default;
    //! One or more statements without parameters.
    virtual void exec(const std::string& sql) = 0;
    [[nodiscard]] virtual std::unique_ptr<Query> prepare(const std::string& sql) = 0;
    //! A write transaction: durable when commit() returns (SQLite synchronous=FULL; Postgres
    //! synchronous_commit as the server has it, on by default).
    virtual void begin() = 0;
    virtual void commit() = 0;
    //! Undoes the open transaction; throws only when even that fails.
    virtual void rollback() = 0;
    //! Creates the schema, or brings one written by an earlier version up to date (several
    //! processes may open one ledger at once: each change is made once).
    virtual void create_schema() = 0;
    //! An SQL expression for the database's own clock, in unix seconds (a lease's time never comes
    //! from a machine's clock).
    [[nodiscard]] virtual const char* now_sql() const = 0;
    //! What a SELECT adds to lock the rows it reads until the transaction ends ("" where the
    //! write transaction already excludes every other writer, as SQLite's does).
    [[nodiscard]] virtual const char* for_update() const = 0;
    [[nodiscard]] virtual const char* for_share() const = 0;
    //! What the database is, for messages: the SQLite file, or the Postgres URL without its password.
    [[nodiscard]] virtual const std::string& where() const = 0;
};

//! The column types of one database, for the one schema both use.
struct SchemaTypes {
    const char* id;           //!< an auto-increment primary key
    const char* real;         //!< unix seconds
    const char* integer;      //!< 64-bit
    const char* table_tail;   //!< after a keyed table's definition (SQLite: " WITHOUT ROWID")
};
//! The ledger's tables and indexes (created if missing), in `t`'s types: the one schema, but for
//! added_columns().
[[nodiscard]] std::string schema_sql(const SchemaTypes& t);
//! A column of topups added after the first release: a ledger written by an earlier version
//! gains it on open (a new ledger too).
struct Column {
    const char* name;
    const char* type;
};
[[nodiscard]] std::vector<Column> added_columns(const SchemaTypes& t);

//! Opens (creating) the SQLite file at `path`, in WAL mode, synchronous=FULL.
[[nodiscard]] std::unique_ptr<Db> open_sqlite(const std::string& path);
//! Connects to a Postgres database (a libpq URI: postgresql://user[:password]@host[:port]/db?...;
//! a password may also come from PGPASSWORD or PGPASSFILE, as libpq reads them).
[[nodiscard]] std::unique_ptr<Db> open_postgres(const std::string& url);
//! How long a Postgres statement may go unanswered (a frozen server, a cut path: TCP alone waits
//! minutes), and how long a connection may take, unless the URI says (keymaster_timeout=,
//! connect_timeout=).
inline constexpr double kDefaultAnswerSeconds = 10;
inline constexpr int kDefaultConnectSeconds = 5;
//! A libpq URI as libpq is given it (keymaster_timeout taken out, connect_timeout added when
//! absent) and the answer timeout. A bad keymaster_timeout is a Problem (kConfig) naming it.
struct PgConnect {
    std::string url;
    double answer_seconds;
    std::string shown;  //!< the URI as given, without its password (for messages)
};
[[nodiscard]] Expected<PgConnect> pg_connect(const std::string& url);
//! The URL with any password replaced by "***" (for logs and messages).
[[nodiscard]] std::string redact_url(const std::string& url);

}  // namespace keymaster::ledger::detail
