#include "keymaster/ledger/reader.hpp"

#include "sql.hpp"
#include "store.hpp"

namespace keymaster::ledger {

using detail::kColumns;
using detail::read_entry;
using detail::Stmt;

std::vector<Entry> Reader::history(const Filter& f) const {
    std::string sql = std::string("SELECT ") + kColumns + " FROM topups WHERE 1=1";
    if (f.network) sql += " AND network=?";
    if (f.address) sql += " AND lower(recipient)=lower(CAST(? AS TEXT))";
    if (f.since) sql += " AND created>=?";
    sql += " ORDER BY created DESC, id DESC";
    Stmt s(*store_->db, sql);
    int i = 0;  // the parameters in order: only those the filter has
    if (f.network) s.bind(++i, *f.network);
    if (f.address) s.bind(++i, *f.address);
    if (f.since) s.bind(++i, *f.since);
    std::vector<Entry> out;
    while (s.step()) out.push_back(read_entry(s));
    return out;
}

}  // namespace keymaster::ledger
