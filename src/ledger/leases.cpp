#include "keymaster/ledger/leases.hpp"

#include "store.hpp"

namespace keymaster::ledger {

using detail::Stmt;

Lease decide_lease(const Lease& current, const std::string& me, double now, double seconds) {
    Lease out = current;
    const bool live = current.expires > now && !current.holder.empty();
    if (live && current.holder != me) {
        out.mine = false;
        return out;
    }
    if (!live || current.holder != me) ++out.epoch;  // a change of holder, or ours again after it expired
    out.holder = me;
    out.expires = now + seconds;
    out.mine = true;
    return out;
}

Lease Leases::claim_lease(const std::string& name, const std::string& holder, double seconds) {
    const double before = store_->clock->wall();
    return store_->unfenced_transaction([&] {
        auto& db = *store_->db;
        Stmt(db, "INSERT INTO lease(name, holder, epoch, expires) VALUES(?, '', 0, 0) ON CONFLICT(name) DO NOTHING")
            .bind(1, name).exec();
        Stmt s(db, std::string("SELECT holder, epoch, expires, ") + db.now_sql() + " FROM lease WHERE name=?" + db.for_update());
        s.bind(1, name);
        if (!s.step()) throw LedgerError("ledger " + db.where() + ": the lease " + name + " is missing");
        const Lease current{s.text(0), static_cast<std::uint64_t>(s.i64(1)), s.real(2), false};
        store_->measure_offset(s.real(3), before, store_->clock->wall());
        const auto next = decide_lease(current, holder, s.real(3), seconds);
        if (next.mine)
            Stmt(db, "UPDATE lease SET holder=?, epoch=?, expires=? WHERE name=?")
                .bind(1, next.holder).bind(2, static_cast<std::int64_t>(next.epoch)).bind(3, next.expires).bind(4, name).exec();
        return next;
    });
}

void Leases::release_lease(const std::string& name, const std::string& holder) {
    store_->unfenced_transaction([&] {
        Stmt(*store_->db, std::string("UPDATE lease SET expires=") + store_->db->now_sql() + " WHERE name=? AND holder=?")
            .bind(1, name).bind(2, holder).exec();
        return 0;
    });
}

void Leases::fence(const std::string& name, const std::string& holder, std::uint64_t epoch) {
    store_->fence = detail::Store::Fence{name, holder, epoch};
}

void Leases::hold_lease(const std::string& name, const std::string& holder, std::uint64_t epoch, double seconds) {
    store_->transaction([&] {
        auto& db = *store_->db;
        Stmt s(db, std::string("SELECT holder, epoch, ") + db.now_sql() + " FROM lease WHERE name=?" + db.for_update());
        s.bind(1, name);
        const bool found = s.step();
        if (!found || s.text(0) != holder || static_cast<std::uint64_t>(s.i64(1)) != epoch)
            throw FencedError("the lease " + name + " is held by " + (found && !s.text(0).empty() ? s.text(0) : "nobody") +
                              ", no longer by " + holder + " (epoch " + std::to_string(epoch) + "): nothing written");
        Stmt(db, "UPDATE lease SET expires=? WHERE name=?").bind(1, s.real(2) + seconds).bind(2, name).exec();
        return 0;
    });
}

bool Leases::renew_lease(const std::string& name, const std::string& holder, double seconds) {
    return renew_leases({{name, holder}}, seconds) == 1;
}

std::size_t Leases::renew_leases(const std::vector<std::pair<std::string, std::string>>& leases, double seconds) {
    if (leases.empty()) return 0;
    return store_->unfenced_transaction([&] {
        auto& db = *store_->db;
        const std::string now = db.now_sql();
        std::size_t n = 0;
        for (const auto& [name, holder] : leases) {
            Stmt s(db, "UPDATE lease SET expires=" + now + " + ? WHERE name=? AND holder=? AND expires > " + now + " RETURNING name");
            s.bind(1, seconds).bind(2, name).bind(3, holder);
            n += s.step() ? 1 : 0;
        }
        return n;
    });
}

}  // namespace keymaster::ledger
