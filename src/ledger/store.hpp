// The open database every concern of the ledger works on, and its transactions (not a public
// header). One Store per Ledger: its connection, its clock, the fence of its writes, the events
// of the open transaction.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "db.hpp"
#include "keymaster/common/clock.hpp"
#include "keymaster/ledger/types.hpp"

namespace keymaster::ledger::detail {

//! One statement, its values bound by chained calls (the Db's Query underneath).
class Stmt {
public:
    Stmt(Db& db, const std::string& sql) : q_(db.prepare(sql)) {}
    Stmt& bind(int i, const std::string& v) {
        q_->bind_text(i, v);
        return *this;
    }
    Stmt& bind(int i, std::int64_t v) {
        q_->bind_i64(i, v);
        return *this;
    }
    Stmt& bind(int i, double v) {
        q_->bind_real(i, v);
        return *this;
    }
    Stmt& bind_null(int i) {
        q_->bind_null(i);
        return *this;
    }
    void reset() { q_->reset(); }
    bool step() { return q_->step(); }
    //! A write: its rows are not read (it may be queued until the transaction's next read or commit).
    void exec() { q_->execute(); }
    [[nodiscard]] std::string text(int c) const { return q_->text(c); }
    [[nodiscard]] std::int64_t i64(int c) const { return q_->i64(c); }
    [[nodiscard]] double real(int c) const { return q_->real(c); }

private:
    std::unique_ptr<Query> q_;
};

//! The database of one Ledger (opened by it, see ledger.cpp), shared by its concerns.
struct Store {
    const Clock* clock = nullptr;  //!< the caller's (the Worker's): its wall time
    //! Shared (Postgres): the database's clock less ours, measured at open and at every lease claim,
    //! so that every replica stamps and counts windows on one clock (0 on SQLite: one process).
    std::atomic<double> offset{0};  //!< written on the ledger's thread, read by the loop (clock_offset)
    bool shared = false;
    [[nodiscard]] double now() const { return clock->wall() + offset; }
    void measure_offset(double db_now, double before, double after) {
        if (shared) offset = db_now - (before + after) / 2;
    }
    std::unique_ptr<Db> db;
    int lock_fd = -1;  //!< SQLite's single-instance lock (-1: not taken)

    //! Runs `fn` in one write transaction; on any error rolls back and rethrows.
    //! Inside Journal::atomically() the outer transaction holds them all.
    template <typename Fn>
    auto transaction(Fn&& fn) {
        if (depth > 0) return fn();
        db->begin();
        ++depth;
        try {
            check_fence();
            auto result = fn();
            write_events();
            --depth;
            db->commit();
            return result;
        } catch (...) {
            depth = 0;
            events.clear();
            db->rollback();
            throw;
        }
    }
    int depth = 0;

    //! A transaction the fence does not check (the lease's own claims and releases).
    template <typename Fn>
    auto unfenced_transaction(Fn&& fn) {
        unfenced = true;
        struct Reset {
            bool& flag;
            ~Reset() { flag = false; }
        } reset{unfenced};
        return transaction(std::forward<Fn>(fn));
    }

    //! The lease a writer was fenced with (none: not fenced).
    struct Fence {
        std::string name, holder;
        std::uint64_t epoch = 0;
    };
    std::optional<Fence> fence;
    bool unfenced = false;  //!< claim_lease's own transaction
    //! Throws FencedError unless the fence's holder still holds its lease (in the transaction).
    void check_fence();

    //! Every change of state also goes to `events`: kept here until the end of the transaction
    //! that made them (nothing reads them back in it), then written in a few multi-row inserts.
    struct Event {
        std::int64_t id;
        double time;
        State state;
        std::string detail;
    };
    std::vector<Event> events;
    void event(std::int64_t id, State s, const std::string& detail) { events.push_back({id, now(), s, detail}); }
    void write_events();
};

}  // namespace keymaster::ledger::detail
