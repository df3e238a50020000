#include <catch2/catch.hpp>

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include <libpq-fe.h>

#include <cstdlib>

#include "keymaster/ledger/ledger.hpp"
#include "../../../src/ledger/db.hpp"

using namespace keymaster;
using ledger::State;

namespace {
// A Clock whose wall time is the test's variable (the steady time does not move).
class NowClock final : public Clock {
public:
    explicit NowClock(const double& now) : now_(now) {}
    double wall() const override { return now_; }
    std::chrono::steady_clock::time_point steady() const override { return {}; }

private:
    const double& now_;
};
}  // namespace

// The same suite runs on both databases: on SQLite by default, and on Postgres when
// KEYMASTER_TEST_POSTGRES names a server (a libpq URI of its maintenance database; the
// integration test ledger_postgres starts one and runs every case not tagged [sqlite]).

namespace {

// The ledger of a test: the SQLite file in `dir`, or a fresh Postgres database named after it.
ledger::Location at(const std::string& dir) {
    const char* server = std::getenv("KEYMASTER_TEST_POSTGRES");
    if (!server || !*server) return {ledger::Location::Kind::kSqlite, dir + "/ledger.sqlite"};
    std::string db = "km_";
    for (char c : std::filesystem::path(dir).filename().string()) db += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    static std::set<std::string> created;
    if (!created.count(db)) {
        PGconn* c = PQconnectdb(server);
        REQUIRE(PQstatus(c) == CONNECTION_OK);
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        PQclear(PQexec(c, ("DROP DATABASE IF EXISTS " + db).c_str()));
        PGresult* r = PQexec(c, ("CREATE DATABASE " + db).c_str());
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        PQfinish(c);
        REQUIRE(ok);
        created.insert(db);
    }
    std::string url = server;
    const auto q = url.find('?');
    const auto slash = url.rfind('/', q == std::string::npos ? std::string::npos : q);
    url = url.substr(0, slash + 1) + db + (q == std::string::npos ? "" : url.substr(q));
    return {ledger::Location::Kind::kPostgres, url};
}

std::string temp_dir() {
    static int n = 0;
    auto d = std::filesystem::temp_directory_path() / ("km-ledger-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(d);
    return d.string();
}

ledger::Entry entry(std::uint64_t nonce, const char* recipient = "0xA", const char* amount = "1000") {
    ledger::Entry e;
    e.network = "alpha";
    e.chain_id = 31337;
    e.bank = "0xBANK";
    e.recipient = recipient;
    e.home = "alpha";
    e.role = "updater";
    e.amount = Wei(amount);
    e.nonce = nonce;
    e.raw = "0x02";
    e.tx_hash = "0xhash" + std::to_string(nonce);
    return e;
}

}  // namespace

TEST_CASE("ledger: intents, states, pending and history survive a reopen", "[ledger]") {
    const auto dir = temp_dir();
    std::int64_t a, b, c;
    {
        ledger::Ledger l(at(dir), true, keymaster::system_clock());
        a = l.record_intent(entry(0, "0xA"));
        b = l.record_intent(entry(1, "0xB"));
        c = l.record_intent(entry(2, "0xC"));
        l.mark(a, State::kSent);
        l.confirmed(b, true, 7, 21000, Wei(21000));
        l.mark(c, State::kSent);
    }
    ledger::Ledger l(at(dir), true, keymaster::system_clock());
    auto p = l.pending("alpha", "0xBANK");
    REQUIRE(p.size() == 2);
    CHECK(p[0].id == a);
    CHECK(p[0].state == State::kSent);
    CHECK(p[1].id == c);
    CHECK(p[0].amount == Wei(1000));
    auto h = l.history({});
    REQUIRE(h.size() == 3);
    CHECK(h[0].id == c);  // newest first
    CHECK(h[1].state == State::kConfirmed);
    CHECK(h[1].block == 7);
    CHECK(h[1].fee_paid == Wei(21000));
    CHECK(l.history({std::nullopt, std::string("0xb"), std::nullopt}).size() == 1);
    CHECK(l.history({std::string("beta"), std::nullopt, std::nullopt}).empty());
    CHECK(l.pending("beta", "0xBANK").empty());
    std::filesystem::remove_all(dir);
}

namespace {
// Code that needs one concern takes that concern's reference alone.
std::int64_t journal_one(ledger::Journal& journal, std::uint64_t nonce) { return journal.record_intent(entry(nonce)); }
std::size_t entries_seen(const ledger::Reader& reader) { return reader.history({}).size(); }
std::size_t states_seen(const ledger::BurnHistory& burn) { return burn.burn_states("alpha").size(); }
}  // namespace

TEST_CASE("ledger: each concern works through its own reference, on one database and one transaction", "[ledger]") {
    const auto dir = temp_dir();
    ledger::Ledger l(at(dir), true, keymaster::system_clock());
    ledger::Journal& journal = l;
    ledger::BurnHistory& burn = l;
    ledger::BankAudit& audit = l;
    const ledger::Reader& reader = l;
    auto write_all = [&] {
        (void)journal_one(journal, 0);
        burn.save_burn("alpha", {{"0xA", 1, 1, Wei(5)}}, {});
        audit.save_audit("alpha", "0xBANK", {3, std::nullopt, std::nullopt, Wei(0)});
    };
    // The journal's transaction holds the other concerns' writes: none is kept when it throws.
    CHECK_THROWS_AS(journal.atomically([&] {
        write_all();
        throw ledger::LedgerError("undone");
    }), ledger::LedgerError);
    CHECK(entries_seen(reader) == 0);
    CHECK(states_seen(burn) == 0);
    CHECK_FALSE(audit.audit("alpha", "0xBANK"));
    journal.atomically(write_all);
    CHECK(entries_seen(reader) == 1);
    CHECK(states_seen(burn) == 1);
    REQUIRE(audit.audit("alpha", "0xBANK"));
    CHECK(audit.audit("alpha", "0xBANK")->next_nonce == 3);
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: every time it writes comes from the clock it was given (on Postgres, set to the database's)", "[ledger][clock]") {
    const auto dir = temp_dir();
    double now = 1000.0;  // far from the system clock's reading
    const auto where = at(dir);
    const NowClock clock(now);
    ledger::Ledger l(where, true, clock);
    // SQLite: one process, the given clock. Postgres: replicas on several machines stamp on one
    // clock, the database's: the given clock's readings moved by what it is off by.
    const bool shared = where.kind == ledger::Location::Kind::kPostgres;
    const double base = shared ? static_cast<double>(std::time(nullptr)) : 1000.0;
    const double off = l.clock_offset();
    if (shared) CHECK(std::abs(1000.0 + off - base) < 60);  // the database's clock, not the given one
    else CHECK(off == 0);
    CHECK(l.now() == 1000.0 + off);
    const auto a = l.record_intent(entry(0, "0xA"));
    now = 1060.5;
    l.mark(a, State::kSent);
    const auto h = l.history({});
    REQUIRE(h.size() == 1);
    CHECK(h[0].created == 1000.0 + off);
    CHECK(h[0].updated == 1060.5 + off);
    now = 1100.0;
    l.confirmed(a, true, 7, 21000, Wei(21000));
    CHECK(l.history({})[0].updated == 1100.0 + off);
    CHECK(l.spent_since("alpha", "0xBANK", 999.0 + off) == Wei(1000));
    CHECK(l.spent_since("alpha", "0xBANK", 1001.0 + off) == Wei(0));  // created at 1000 on the given clock
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: spend counts each nonce once and skips dropped and failed", "[ledger]") {
    const auto dir = temp_dir();
    ledger::Ledger l(at(dir), true, keymaster::system_clock());
    const auto a = l.record_intent(entry(0, "0xA", "100"));
    const auto a2 = l.record_intent(entry(0, "0xA", "100"));  // a replacement of nonce 0
    l.replaced(a, "0xhash0b");
    l.mark(a2, State::kSent);
    const auto b = l.record_intent(entry(1, "0xB", "50"));
    l.mark(b, State::kDropped);
    const auto c = l.record_intent(entry(1, "0xC", "30"));
    l.confirmed(c, false, 9, 21000, Wei(5));  // reverted: failed
    (void)l.record_intent(entry(2, "0xD", "7"));
    CHECK(l.spent_since("alpha", "0xBANK", 0) == Wei(107));
    CHECK(l.spent_since("alpha", "0xBANK", 4e9) == Wei(0));  // nothing in the future
    CHECK(l.spent_since("alpha", "0xOTHER", 0) == Wei(0));
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: a fee is booked whole and by part (an OP Stack chain's L1 data and operator fees)", "[ledger][l2]") {
    const auto dir = temp_dir();
    ledger::Ledger l(at(dir), true, keymaster::system_clock());
    const auto a = l.record_intent(entry(0, "0xA", "100"));
    const auto b = l.record_intent(entry(1, "0xB", "100"));
    l.confirmed(a, true, 5, 21000, Wei(1000) + 300 + 20, Wei(300), Wei(20));
    l.confirmed(b, true, 5, 21000, Wei(1000));  // an L1 chain: no parts
    std::map<std::int64_t, ledger::Entry> h;
    for (auto& e : l.history({})) h[e.id] = e;
    CHECK(h[a].fee_paid == Wei(1320));
    CHECK(h[a].l1_fee == Wei(300));
    CHECK(h[a].operator_fee == Wei(20));
    CHECK(h[b].fee_paid == Wei(1000));
    CHECK(h[b].l1_fee == Wei(0));
    // What the bank paid counts the whole fee.
    CHECK(l.paid_since("alpha", "0xBANK", 0) == Wei(200 + 1320 + 1000));
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: one keymaster per data directory", "[ledger][sqlite]") {
    const auto dir = temp_dir();
    {
        ledger::Ledger first(dir, true, keymaster::system_clock());
        try {
            ledger::Ledger second(dir, true, keymaster::system_clock());
            FAIL("a second holder was allowed");
        } catch (const ledger::LockedError& e) {
            CHECK(std::string(e.what()) == "another keymaster (pid " + std::to_string(::getpid()) + ") is using " + dir);
        }
        ledger::Ledger reader(dir, false, keymaster::system_clock());  // history needs no lock
        CHECK(reader.history({}).empty());
    }
    ledger::Ledger again(dir, true, keymaster::system_clock());  // released with the first
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: a lease left in an SQLite ledger by a process that is gone does not keep the next one from sending", "[ledger][sqlite]") {
    const auto dir = temp_dir();
    {
        ledger::Ledger killed(dir, true, keymaster::system_clock());
        REQUIRE(killed.claim_lease("sender:31337:0xbank", "host/1/aa/alpha", 3600).mine);  // never released
    }
    {
        ledger::Ledger reader(dir, false, keymaster::system_clock());  // (history: no lock, changes nothing)
        ledger::Ledger next(dir, true, keymaster::system_clock());
        CHECK(next.claim_lease("sender:31337:0xbank", "host/2/bb/alpha", 60).mine);
        // Within the process, the lease still excludes: another Worker on that bank and chain waits.
        CHECK_FALSE(next.claim_lease("sender:31337:0xbank", "host/2/bb/beta", 60).mine);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: an unusable data directory is an error, not a silent success", "[ledger][sqlite]") {
    const auto dir = temp_dir();
    std::filesystem::create_directories(std::filesystem::path(dir).parent_path());
    { std::ofstream(dir) << "a file, not a directory"; }
    CHECK_THROWS_AS(ledger::Ledger(dir, true, keymaster::system_clock()), ledger::LedgerError);
    std::filesystem::remove(dir);
}

#include <sqlite3.h>

#include <atomic>
#include <thread>

TEST_CASE("ledger: one written by the previous release opens, gains its new column once, even opened at once by many", "[ledger][sqlite]") {
    const auto dir = temp_dir();
    std::filesystem::create_directories(dir);
    // The previous release's schema (no taken_block), with one unresolved top-up in it.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((dir + "/ledger.sqlite").c_str(), &db) == SQLITE_OK);
    const char* old = R"sql(
CREATE TABLE topups (
  id INTEGER PRIMARY KEY,
  created REAL NOT NULL, updated REAL NOT NULL,
  network TEXT NOT NULL, chain_id INTEGER NOT NULL, bank TEXT NOT NULL,
  recipient TEXT NOT NULL, home TEXT NOT NULL, role TEXT NOT NULL,
  amount TEXT NOT NULL, nonce INTEGER NOT NULL, tx_type INTEGER NOT NULL,
  max_fee TEXT NOT NULL, priority_fee TEXT NOT NULL, gas_price TEXT NOT NULL, gas_limit INTEGER NOT NULL,
  raw TEXT NOT NULL, tx_hash TEXT NOT NULL, state TEXT NOT NULL,
  block INTEGER, gas_used INTEGER, fee_paid TEXT, replaced_by TEXT, error TEXT, sent_block INTEGER);
CREATE TABLE events (id INTEGER PRIMARY KEY, topup_id INTEGER NOT NULL REFERENCES topups(id),
  time REAL NOT NULL, state TEXT NOT NULL, detail TEXT);
INSERT INTO topups VALUES(1, 1.0, 1.0, 'alpha', 31337, '0xBANK', '0xA', 'alpha', 'updater', '1000', 7, 2,
  '10', '1', '0', 21000, '0x02', '0xold', 'sent', NULL, NULL, NULL, NULL, NULL, 5);
)sql";
    REQUIRE(sqlite3_exec(db, old, nullptr, nullptr, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_close(db) == SQLITE_OK);
    // The daemon starting while `history` runs: several processes migrate at once (here, threads).
    std::vector<std::thread> openers;
    std::atomic<int> failures{0};
    for (int i = 0; i < 8; ++i)
        openers.emplace_back([&] {
            try {
                ledger::Ledger l(dir, /*lock=*/false, keymaster::system_clock());
                if (l.pending("alpha", "0xBANK").size() != 1) ++failures;
            } catch (const std::exception& e) {
                UNSCOPED_INFO(e.what());
                ++failures;
            }
        });
    for (auto& t : openers) t.join();
    CHECK(failures == 0);
    ledger::Ledger l(dir, /*lock=*/true, keymaster::system_clock());
    auto p = l.pending("alpha", "0xBANK");
    REQUIRE(p.size() == 1);
    CHECK(p[0].tx_hash == "0xold");
    CHECK(p[0].nonce == 7);
    CHECK(p[0].taken_block == 0);
    l.taken(p[0].id, 12);
    CHECK(l.pending("alpha", "0xBANK")[0].taken_block == 12);
    // And the fee's parts (issue 21): booked on its receipt.
    l.confirmed(p[0].id, true, 13, 21000, Wei(900), Wei(500), Wei(100));
    const auto h = l.history({});
    REQUIRE(h.size() == 1);
    CHECK(h[0].fee_paid == Wei(900));
    CHECK(h[0].l1_fee == Wei(500));
    CHECK(h[0].operator_fee == Wei(100));
    // Issue 26's columns: a row booked by this version is not final until finalized().
    CHECK_FALSE(h[0].is_final);
    CHECK_FALSE(h[0].fee_estimated);
    // It gained the burn history too.
    CHECK(l.burn_states("alpha").empty());
    l.save_burn("alpha", {{"0xA", 1, 2, Wei(5)}}, {});
    CHECK(l.burn_states("alpha").size() == 1);
}

TEST_CASE("ledger: a new ledger is switched to WAL while another process writes it", "[ledger][sqlite]") {
    // The first opener of a new ledger switches it to WAL, reading it first: while another
    // connection is writing it (`history` polled beside a daemon's first start, creating the
    // schema), SQLite answers "database is locked" at once, without its busy handler, since
    // waiting could deadlock. The open asks again until the other is done.
    const auto dir = temp_dir();
    std::filesystem::create_directories(dir);
    sqlite3* writer = nullptr;
    REQUIRE(sqlite3_open((dir + "/ledger.sqlite").c_str(), &writer) == SQLITE_OK);
    REQUIRE(sqlite3_exec(writer, "BEGIN IMMEDIATE; CREATE TABLE t(x);", nullptr, nullptr, nullptr) == SQLITE_OK);
    std::thread done([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        (void)sqlite3_exec(writer, "COMMIT", nullptr, nullptr, nullptr);
    });
    std::string error;
    try {
        ledger::Ledger l(dir, /*lock=*/true, keymaster::system_clock());
        (void)l.record_intent(entry(0));
    } catch (const std::exception& e) {
        error = e.what();
    }
    done.join();
    REQUIRE(sqlite3_close(writer) == SQLITE_OK);
    CHECK(error.empty());
    ledger::Ledger l(dir, /*lock=*/false, keymaster::system_clock());
    CHECK(l.history({}).size() == (error.empty() ? 1u : 0u));
    sqlite3* check = nullptr;
    REQUIRE(sqlite3_open((dir + "/ledger.sqlite").c_str(), &check) == SQLITE_OK);
    std::string mode;
    REQUIRE(sqlite3_exec(check, "PRAGMA journal_mode", [](void* out, int, char** v, char**) {
        *static_cast<std::string*>(out) = v[0] ? v[0] : "";
        return 0;
    }, &mode, nullptr) == SQLITE_OK);
    CHECK(mode == "wal");
    REQUIRE(sqlite3_close(check) == SQLITE_OK);
}

TEST_CASE("ledger: burn history is kept per network, replaced by key, pruned by age, read without the lock", "[ledger][burn]") {
    const auto dir = temp_dir();
    {
        ledger::Ledger l(at(dir), true, keymaster::system_clock());
        l.save_burn("alpha", {{"0xA", 100, 200, Wei(900)}, {"0xB", 100, 150, Wei(50)}},
                    {{"0xA", 100, 150, Wei(60)}, {"0xA", 150, 200, Wei(40)}, {"0xB", 100, 150, Wei(7)}});
        l.save_burn("beta", {{"0xA", 1, 1, Wei(1)}}, {{"0xA", 1, 2, Wei(1)}});
        // The open bucket grows: same key, new stop and amount.
        l.save_burn("alpha", {{"0xA", 100, 230, Wei(880)}}, {{"0xA", 150, 230, Wei(60)}});
        // Another keymaster (status, history) reads beside the one holding the lock.
        ledger::Ledger reader(at(dir), false, keymaster::system_clock());
        auto states = reader.burn_states("alpha");
        REQUIRE(states.size() == 2);
        const auto& a = states[0].address == "0xA" ? states[0] : states[1];
        CHECK(a.since == 100);
        CHECK(a.time == 230);
        CHECK(a.balance == 880);
        auto rows = reader.burn_rows("alpha", 0);
        REQUIRE(rows.size() == 3);
        CHECK(rows[1].address == "0xA");
        CHECK(rows[1].start == 150);
        CHECK(rows[1].stop == 230);
        CHECK(rows[1].spent == 60);
        CHECK(reader.burn_rows("alpha", 160).size() == 1);  // only buckets ending at or after 160
        l.prune_burn("alpha", 160);
        l.prune_burn("beta", 10);
        CHECK(reader.burn_rows("alpha", 0).size() == 1);
        CHECK(reader.burn_rows("beta", 0).empty());
    }
}

TEST_CASE("ledger: arrivals and what the bank paid, from settled entries", "[ledger][burn]") {
    const auto dir = temp_dir();
    ledger::Ledger l(at(dir), true, keymaster::system_clock());
    const auto t0 = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() - 1;
    const auto a = l.record_intent(entry(1, "0xA", "1000"));
    const auto b = l.record_intent(entry(2, "0xB", "500"));
    auto filler = entry(3, "0xBANK", "0");
    filler.role = "nonce-filler";
    const auto f = l.record_intent(filler);
    const auto c = l.record_intent(entry(4, "0xA", "300"));
    const auto d = l.record_intent(entry(5, "0xA", "200"));
    l.confirmed(a, true, 10, 21000, Wei(21));
    l.confirmed(b, false, 11, 21000, Wei(20));  // reverted: fee only
    l.confirmed(f, true, 12, 21000, Wei(5));
    l.mark(c, State::kSent);  // not settled
    l.mark(d, State::kDropped);
    auto arr = l.confirmed_since("alpha", "0xBANK", t0);
    REQUIRE(arr.size() == 1);  // fillers, reverted, unsettled and dropped entries brought nothing
    CHECK(arr[0].recipient == "0xA");
    CHECK(arr[0].amount == 1000);
    CHECK(arr[0].time > t0);
    CHECK(l.confirmed_since("alpha", "0xBANK", arr[0].time).empty());  // strictly after
    CHECK(l.paid_since("alpha", "0xBANK", t0) == Wei(1000 + 21 + 20 + 5));
    CHECK(l.paid_since("alpha", "0xBANK", t0 + 3600) == 0);
}

TEST_CASE("ledger: the bank audit's nonce uses, outflow and place survive a reopen", "[ledger][audit]") {
    const auto dir = temp_dir();
    {
        ledger::Ledger l(at(dir), true, keymaster::system_clock());
        const auto a = l.record_intent(entry(0, "0xA", "100"));
        const auto a2 = l.record_intent(entry(0, "0xA", "100"));  // its replacement, mined
        l.replaced(a, "0xhash0b");
        l.confirmed(a2, true, 5, 21000, Wei(3));
        const auto b = l.record_intent(entry(1, "0xB", "50"));
        l.confirmed(b, false, 6, 21000, Wei(4));  // reverted: only its fee left the bank
        const auto c = l.record_intent(entry(2, "0xC", "30"));
        l.mark(c, State::kDropped);
        (void)l.record_intent(entry(3, "0xD", "7"));  // intent: open
        const auto uses = l.nonce_uses("alpha", "0xBANK", 0, 10);
        CHECK(uses.at(0).mined);
        CHECK(uses.at(0).open);  // the replaced one is still unresolved: mined wins in the audit
        CHECK(uses.at(1).mined);
        CHECK_FALSE(uses.at(2).mined);
        CHECK_FALSE(uses.at(2).open);
        CHECK(uses.at(3).open);
        CHECK(uses.count(4) == 0);
        CHECK(l.nonce_uses("alpha", "0xBANK", 1, 2).size() == 1);
        CHECK(l.outflow("alpha", "0xBANK", 0, 4) == Wei(100 + 3 + 4));
        CHECK(l.outflow("alpha", "0xBANK", 1, 4) == Wei(4));
        CHECK_FALSE(l.audit("alpha", "0xBANK").has_value());
        l.save_audit("alpha", "0xBANK", {3, std::nullopt, std::nullopt, Wei(0)});
        l.save_audit("alpha", "0xBANK", {4, 2, 99, Wei("123456789012345678901234567890")});
    }
    ledger::Ledger l(at(dir), false, keymaster::system_clock());
    const auto a = l.audit("alpha", "0xBANK");
    REQUIRE(a.has_value());
    CHECK(a->next_nonce == 4);
    CHECK(a->point_nonce == std::optional<std::uint64_t>(2));
    CHECK(a->point_block == std::optional<std::uint64_t>(99));
    CHECK(a->point_balance == Wei("123456789012345678901234567890"));
    CHECK_FALSE(l.audit("beta", "0xBANK").has_value());
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: --ledger names SQLite or Postgres; a password is never shown", "[ledger][location]") {
    auto d = ledger::parse_location("", "/var/lib/keymaster");
    REQUIRE(d.has_value());
    CHECK(d->kind == ledger::Location::Kind::kSqlite);
    CHECK(d->target == "/var/lib/keymaster/ledger.sqlite");
    auto f = ledger::parse_location("sqlite:/data/x.sqlite", "/ignored");
    REQUIRE(f.has_value());
    CHECK(f->kind == ledger::Location::Kind::kSqlite);
    CHECK(f->target == "/data/x.sqlite");
    for (const char* url : {"postgresql://km:s3cret@db:5432/keymaster?sslmode=require", "postgres://km:s3cret@db/keymaster"}) {
        auto p = ledger::parse_location(url, "/ignored");
        REQUIRE(p.has_value());
        CHECK(p->kind == ledger::Location::Kind::kPostgres);
        CHECK(p->target == url);  // libpq gets it whole
        CHECK(p->shown().find("s3cret") == std::string::npos);
        CHECK(p->shown().find("km:***@db") != std::string::npos);
    }
    auto q = ledger::parse_location("postgresql://db/keymaster?user=km&password=s3cret&sslmode=require", "/x");
    REQUIRE(q.has_value());
    CHECK(q->shown() == "postgresql://db/keymaster?user=km&password=***&sslmode=require");
    for (const char* bad : {"mysql://km:s3cret@db/x", "sqlite:", "/var/lib/keymaster/ledger.sqlite"}) {
        INFO(bad);
        auto b = ledger::parse_location(bad, "/x");
        REQUIRE(b.has_error());
        CHECK(b.error().fault == Fault::kConfig);
        CHECK(b.error().message.find("s3cret") == std::string::npos);
        CHECK(b.error().message.find("expected sqlite:PATH or a Postgres URI") != std::string::npos);
    }
}

TEST_CASE("ledger: Postgres timeouts: keymaster_timeout is ours (taken out), connect_timeout libpq's (added when absent)", "[ledger][location][sqlite]") {
    using ledger::detail::pg_connect;
    for (const auto& [url, libpq, seconds] : std::vector<std::tuple<std::string, std::string, double>>{
             {"postgresql://km@db/k", "postgresql://km@db/k?connect_timeout=5", 10},
             {"postgresql://km@db/k?sslmode=require", "postgresql://km@db/k?sslmode=require&connect_timeout=5", 10},
             {"postgresql://km@db/k?keymaster_timeout=3", "postgresql://km@db/k?connect_timeout=5", 3},
             {"postgresql://km@db/k?connect_timeout=2&keymaster_timeout=2.5&sslmode=disable",
              "postgresql://km@db/k?connect_timeout=2&sslmode=disable", 2.5},
         }) {
        INFO(url);
        const auto c = pg_connect(url);
        REQUIRE(c.has_value());
        CHECK(c->url == libpq);
        CHECK(c->answer_seconds == seconds);
        CHECK(ledger::parse_location(url, "/x").has_value());
    }
    for (const char* bad : {"postgresql://km:s3cret@db/k?keymaster_timeout=0", "postgresql://km:s3cret@db/k?keymaster_timeout=ten",
                            "postgresql://km:s3cret@db/k?keymaster_timeout=", "postgresql://km:s3cret@db/k?keymaster_timeout=5s"}) {
        INFO(bad);
        const auto b = ledger::parse_location(bad, "/x");
        REQUIRE(b.has_error());
        CHECK(b.error().fault == Fault::kConfig);
        CHECK(b.error().message.find("keymaster_timeout") != std::string::npos);
        CHECK(b.error().message.find("s3cret") == std::string::npos);
    }
}

TEST_CASE("ledger: a Postgres server that cannot be reached is a LedgerError that names it without its password", "[ledger][location][sqlite]") {
    // (Tagged sqlite: it needs no server, so it runs in the default pass.)
    const ledger::Location nowhere{ledger::Location::Kind::kPostgres,
                                   "postgresql://km:s3cret@127.0.0.1:1/keymaster?connect_timeout=2"};
    try {
        ledger::Ledger l(nowhere, true, keymaster::system_clock());
        FAIL("connected to nothing");
    } catch (const ledger::LedgerError& e) {
        const std::string what = e.what();
        CHECK(what.find("s3cret") == std::string::npos);
        CHECK(what.find("postgresql://km:***@127.0.0.1:1/keymaster") != std::string::npos);
        CHECK(what.find("cannot connect") != std::string::npos);
    }
}

TEST_CASE("lease: renew our own, take a free or expired one (a new epoch), leave another's alone", "[ledger][lease]") {
    using ledger::Lease;
    struct Row {
        const char* what;
        Lease current;
        const char* me;
        bool mine;
        std::uint64_t epoch;
        const char* holder;
    };
    const double now = 1000;
    const std::vector<Row> rows = {
        {"never held", {"", 0, 0, false}, "a", true, 1, "a"},
        {"ours, live: renewed in the same epoch", {"a", 3, now + 5, false}, "a", true, 3, "a"},
        {"another's, live: left alone", {"b", 3, now + 5, false}, "a", false, 3, "b"},
        {"another's, expired: taken, next epoch", {"b", 3, now - 1, false}, "a", true, 4, "a"},
        {"ours, expired: ours again, in a new epoch (our old fence no longer holds)", {"a", 3, now - 1, false}, "a", true, 4, "a"},
        {"expires exactly now: expired", {"b", 3, now, false}, "a", true, 4, "a"},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        const auto got = ledger::decide_lease(r.current, r.me, now, 15);
        CHECK(got.mine == r.mine);
        CHECK(got.epoch == r.epoch);
        CHECK(got.holder == r.holder);
        if (r.mine) CHECK(got.expires == now + 15);
        else CHECK(got.expires == r.current.expires);
    }
}

TEST_CASE("lease: claimed on the database's clock; a deposed holder's writes are fenced and write nothing", "[ledger][lease]") {
    const auto dir = temp_dir();
    const auto where = at(dir);
    const auto& clock = keymaster::system_clock();
    ledger::Ledger a(where, false, clock), b(where, false, clock);  // two replicas on one ledger
    auto la = a.claim_lease("keymaster", "a", 60);
    REQUIRE(la.mine);
    CHECK(la.epoch == 1);
    CHECK_FALSE(b.claim_lease("keymaster", "b", 60).mine);  // a holds it
    a.fence("keymaster", "a", la.epoch);
    (void)a.record_intent(entry(0));
    CHECK(a.claim_lease("keymaster", "a", 60).epoch == 1);  // renewed: the same epoch

    // a's lease runs out (renewed for no time): its next write is refused, nothing written.
    (void)a.claim_lease("keymaster", "a", -1);
    CHECK_THROWS_AS(a.record_intent(entry(1)), ledger::FencedError);
    CHECK(a.history({}).size() == 1);

    // b takes over in the next epoch and writes; a cannot take it back while b holds it.
    auto lb = b.claim_lease("keymaster", "b", 60);
    REQUIRE(lb.mine);
    CHECK(lb.epoch == 2);
    b.fence("keymaster", "b", lb.epoch);
    (void)b.record_intent(entry(1));
    CHECK_FALSE(a.claim_lease("keymaster", "a", 60).mine);
    CHECK_THROWS_AS(a.mark(1, State::kSent), ledger::FencedError);
    CHECK_THROWS_AS(a.atomically([&] { a.mark(1, State::kSent); }), ledger::FencedError);
    // b is done (a one-off top-up): released, the next claim takes it in a new epoch.
    b.release_lease("keymaster", "b");
    a.release_lease("keymaster", "a");  // not a's: changes nothing
    auto again = a.claim_lease("keymaster", "a", 60);
    CHECK(again.mine);
    CHECK(again.epoch == 3);
    const auto h = b.history({});
    REQUIRE(h.size() == 2);
    for (const auto& e : h) CHECK(e.state == State::kIntent);  // a's marks never landed
    std::filesystem::remove_all(dir);
}

namespace {

// Runs SQL on the test's ledger database itself (SQLite file or Postgres), beside the Ledger.
void raw_sql(const ledger::Location& where, const std::string& sql) {
    if (where.kind == ledger::Location::Kind::kSqlite) {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(where.target.c_str(), &db) == SQLITE_OK);
        char* err = nullptr;
        const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
        INFO((err ? err : ""));
        sqlite3_free(err);
        sqlite3_close(db);
        REQUIRE(rc == SQLITE_OK);
        return;
    }
    PGconn* c = PQconnectdb(where.target.c_str());
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    INFO(PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    REQUIRE(ok);
}

// A trigger that refuses (as a full disk or a constraint would) every `op` (INSERT or UPDATE) on
// topups of the given nonce.
void refuse(const ledger::Location& where, const char* op, int nonce) {
    const std::string n = std::to_string(nonce);
    if (where.kind == ledger::Location::Kind::kSqlite) {
        raw_sql(where, std::string("CREATE TRIGGER refuse BEFORE ") + op + " ON topups WHEN NEW.nonce = " + n +
                           " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;");
        return;
    }
    raw_sql(where, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.nonce = " + n +
                       " THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;"
                       "CREATE TRIGGER refuse BEFORE " + op + " ON topups FOR EACH ROW EXECUTE FUNCTION refuse();");
}

std::vector<ledger::Entry> entries(int n, int first_nonce = 0) {
    std::vector<ledger::Entry> out;
    for (int k = 0; k < n; ++k) {
        const auto nonce = static_cast<std::uint64_t>(first_nonce + k);
        out.push_back(entry(nonce, ("0xR" + std::to_string(nonce)).c_str(), std::to_string(1000 + nonce).c_str()));
    }
    return out;
}

}  // namespace

TEST_CASE("ledger: a journal batch gets every entry its own id and time, in a few statements", "[ledger][batch]") {
    const auto dir = temp_dir();
    double now = 2000.0;
    const NowClock clock(now);
    ledger::Ledger l(at(dir), true, clock);
    for (const int n : {0, 1, 3, 85, 150}) {  // 85 = 64 + 16 + 4 + 1: every statement size
        auto batch = entries(n, 1000 * n);
        l.record_intents(batch);
        std::set<std::int64_t> ids;
        for (const auto& e : batch) {
            CHECK(e.id > 0);
            CHECK(e.created == now + l.clock_offset());  // (Postgres: the database's clock)
            ids.insert(e.id);
        }
        CHECK(ids.size() == static_cast<std::size_t>(n));
        // Each id is the row of its own entry.
        std::map<std::int64_t, ledger::Entry> stored;
        for (auto& e : l.history({})) stored[e.id] = e;
        for (const auto& e : batch) {
            REQUIRE(stored.count(e.id) == 1);
            CHECK(stored[e.id].recipient == e.recipient);
            CHECK(stored[e.id].nonce == e.nonce);
            CHECK(stored[e.id].amount == e.amount);
            CHECK(stored[e.id].tx_hash == e.tx_hash);
            CHECK(stored[e.id].state == State::kIntent);
        }
        now += 1;
    }
    CHECK(l.pending("alpha", "0xBANK").size() == 3 + 85 + 150 + 1);
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: a write the database refuses fails its whole transaction, queued or not; nothing of it is kept", "[ledger][batch]") {
    const auto dir = temp_dir();
    const auto where = at(dir);
    ledger::Ledger l(where, true, keymaster::system_clock());
    auto first = entries(3);
    l.record_intents(first);
    refuse(where, "UPDATE", 1);

    // The refused mark is the second of three writes in one transaction (on Postgres they are
    // queued and answered at the commit): the transaction fails, and the other two are undone.
    CHECK_THROWS_AS(l.atomically([&] {
                        for (const auto& e : first) l.mark(e.id, State::kSent);
                    }),
                    ledger::LedgerError);
    for (const auto& e : l.history({})) CHECK(e.state == State::kIntent);
    // A refused write before a read in the same transaction fails that read.
    CHECK_THROWS_AS(l.atomically([&] {
                        l.mark(first[1].id, State::kSent);
                        (void)l.pending("alpha", "0xBANK");
                    }),
                    ledger::LedgerError);
    // The ledger is usable after it: the writes it accepts are kept.
    l.atomically([&] {
        l.mark(first[0].id, State::kSent);
        l.mark(first[2].id, State::kSent);
    });
    std::map<std::uint64_t, State> states;
    for (const auto& e : l.history({})) states[e.nonce] = e.state;
    CHECK(states == std::map<std::uint64_t, State>{{0, State::kSent}, {1, State::kIntent}, {2, State::kSent}});

    // A journal batch with one refused entry writes none of them.
    ledger::Ledger other(at(dir + "b"), true, keymaster::system_clock());
    refuse(at(dir + "b"), "INSERT", 5);
    auto batch = entries(85);
    CHECK_THROWS_AS(other.record_intents(batch), ledger::LedgerError);
    CHECK(other.history({}).empty());
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(dir + "b");
}

TEST_CASE("ledger: unresolved entries found by chain and bank, whatever network name they were journaled under", "[ledger]") {
    const auto dir = temp_dir();
    ledger::Ledger l(at(dir), true, keymaster::system_clock());
    auto renamed = entry(1, "0xB");
    renamed.network = "beta";  // the same chain and bank, under the network's new name
    auto other_chain = entry(2, "0xC");
    other_chain.chain_id = 10;
    other_chain.network = "gamma";
    const auto a = l.record_intent(entry(0, "0xA"));
    (void)l.record_intent(renamed);
    (void)l.record_intent(other_chain);
    CHECK(l.pending("alpha", "0xBANK").size() == 1);
    const auto p = l.pending(31337, "0xBANK");
    REQUIRE(p.size() == 2);
    CHECK(p[0].id == a);
    CHECK(p[1].network == "beta");
    CHECK(l.pending(10, "0xBANK").size() == 1);
    CHECK(l.spent_since(31337, "0xBANK", 0) == Wei(2000));
    CHECK(l.received_since(31337, "0xBANK", 0).size() == 2);
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: a mined entry is re-checked until final; a reorged one is sent again with its booking undone", "[ledger][reorg]") {
    const auto dir = temp_dir();
    ledger::Ledger l(at(dir), true, keymaster::system_clock());
    const auto a = l.record_intent(entry(0, "0xA"));
    const auto b = l.record_intent(entry(1, "0xB"));
    l.confirmed(a, true, 7, 21000, Wei(900), 0, 0, "0xblock7");
    l.confirmed(b, true, 8, 21000, Wei(800), 0, 0, "0xblock8", /*estimated=*/true);
    auto u = l.unfinal(31337, "0xBANK");
    REQUIRE(u.size() == 2);
    CHECK(u[0].block_hash == "0xblock7");
    CHECK_FALSE(u[0].fee_estimated);
    CHECK(u[1].fee_estimated);
    l.finalized(a);
    u = l.unfinal(31337, "0xBANK");
    REQUIRE(u.size() == 1);
    CHECK(u[0].id == b);
    CHECK(l.history({})[1].is_final);
    // b's block is gone: sent again, unresolved (its account waits), its fee and block undone.
    l.reorged(b, "reorged: block 8 is no longer the chain's");
    CHECK(l.unfinal(31337, "0xBANK").empty());
    const auto p = l.pending(31337, "0xBANK");
    REQUIRE(p.size() == 1);
    CHECK(p[0].id == b);
    CHECK(p[0].state == State::kSent);
    CHECK(p[0].block == 0);
    CHECK(p[0].fee_paid == Wei(0));
    CHECK(p[0].block_hash.empty());
    CHECK(l.spent_since(31337, "0xBANK", 0) == Wei(2000));  // still counted against daily
    // Mined again elsewhere: booked once, in the block the chain holds.
    l.confirmed(b, true, 9, 21000, Wei(700), 0, 0, "0xblock9");
    const auto h = l.history({});
    REQUIRE(h.size() == 2);
    CHECK(h[0].block == 9);
    CHECK(h[0].fee_paid == Wei(700));
    std::filesystem::remove_all(dir);
}

TEST_CASE("lease: a sender lease is checked and extended in the journal's transaction; renewed only while held",
          "[ledger][lease][sender]") {
    const auto dir = temp_dir();
    const auto where = at(dir);
    const auto& clock = keymaster::system_clock();
    ledger::Ledger a(where, false, clock), b(where, false, clock);
    const std::string name = "sender:31337:0xbank";
    const auto la = a.claim_lease(name, "a", 60);
    REQUIRE(la.mine);
    a.atomically([&] {
        a.hold_lease(name, "a", la.epoch, 60);
        (void)a.record_intent(entry(0));
    });
    CHECK_FALSE(b.claim_lease(name, "b", 60).mine);
    // Expired, nobody took it: still a's (same holder and epoch), extended.
    (void)a.claim_lease(name, "a", -1);
    a.atomically([&] { a.hold_lease(name, "a", la.epoch, 60); });
    CHECK_FALSE(b.claim_lease(name, "b", 60).mine);
    // Renewed by holder; released by holder: b takes it, and a's next journal writes nothing.
    CHECK(a.renew_lease(name, "a", 60));
    CHECK_FALSE(b.renew_lease(name, "b", 60));  // never taken by a renewal
    a.release_lease(name, "a");
    CHECK_FALSE(a.renew_lease(name, "a", 60));  // released (expired): renewing does not take it back
    const auto lb = b.claim_lease(name, "b", 60);
    REQUIRE(lb.mine);
    CHECK(lb.epoch == la.epoch + 1);
    try {
        a.atomically([&] {
            a.hold_lease(name, "a", la.epoch, 60);
            (void)a.record_intent(entry(1));
        });
        FAIL("a journaled under b's lease");
    } catch (const ledger::FencedError& e) {
        CHECK_THAT(e.what(), Catch::Contains("held by b"));
    }
    CHECK(b.history({}).size() == 1);
    std::filesystem::remove_all(dir);
}

TEST_CASE("ledger: a top-up re-booked (receipt after an estimate, a reorg) is one arrival, at its first confirmation", "[ledger][burn]") {
    const auto dir = temp_dir();
    double now = 1000.0;
    const NowClock clock(now);
    ledger::Ledger l(at(dir), true, clock);
    const double off = l.clock_offset();
    const auto a = l.record_intent(entry(0, "0xA", "500"));
    now = 1010.0;
    l.confirmed(a, true, 7, 21000, Wei(900), 0, 0, "0xblock7", /*estimated=*/true);
    now = 1100.0;
    l.confirmed(a, true, 7, 21000, Wei(800), 0, 0, "0xblock7");  // its receipt at last
    l.reorged(a, "reorged");
    now = 1200.0;
    l.confirmed(a, true, 9, 21000, Wei(800), 0, 0, "0xblock9");  // mined again
    const auto first = l.confirmed_since("alpha", "0xBANK", 1000.0 + off);
    REQUIRE(first.size() == 1);
    CHECK(first[0].time == 1010.0 + off);
    CHECK(l.confirmed_since("alpha", "0xBANK", 1050.0 + off).empty());
    CHECK(l.paid_since("alpha", "0xBANK", 1050.0 + off) == Wei(0));
    CHECK(l.paid_since("alpha", "0xBANK", 1000.0 + off) == Wei(1300));
    std::filesystem::remove_all(dir);
}
