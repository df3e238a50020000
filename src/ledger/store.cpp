#include "store.hpp"

#include "sql.hpp"

namespace keymaster::ledger::detail {

void Store::check_fence() {
    if (!fence || unfenced) return;
    Stmt s(*db, std::string("SELECT 1 FROM lease WHERE name=? AND holder=? AND epoch=? AND expires > ") + db->now_sql() +
                    db->for_share());
    s.bind(1, fence->name).bind(2, fence->holder).bind(3, static_cast<std::int64_t>(fence->epoch));
    if (!s.step())
        throw FencedError("ledger " + db->where() + ": the lease " + fence->name + " (epoch " + std::to_string(fence->epoch) +
                          ") is no longer held by " + fence->holder + ": nothing written");
}

void Store::write_events() {
    std::size_t first = 0;
    for (const auto size : row_chunks(events.size())) {
        Stmt s(*db, rows_sql("INSERT INTO events(topup_id, time, state, detail) VALUES", "(?,?,?,?)", size));
        for (std::size_t k = 0; k < size; ++k) {
            const auto& e = events[first + k];
            const int at = static_cast<int>(4 * k);
            s.bind(at + 1, e.id).bind(at + 2, e.time).bind(at + 3, std::string(state_name(e.state))).bind(at + 4, e.detail);
        }
        s.exec();
        first += size;
    }
    events.clear();
}

}  // namespace keymaster::ledger::detail
