// The read side of `keymaster history`: entries as a query selects them, newest first (the
// command opens the ledger without its lock, beside a running daemon).
#pragma once

#include <vector>

#include "keymaster/ledger/types.hpp"

namespace keymaster::ledger {

//! The history of a ledger (a concern of the Ledger, which offers it; see ledger.hpp).
class Reader {
public:
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    //! Entries matching `f`, newest first.
    std::vector<Entry> history(const Filter& f) const;

protected:
    //! On the store a Ledger opened (and keeps open while this lives).
    explicit Reader(detail::Store& store) : store_(&store) {}
    ~Reader() = default;

private:
    detail::Store* store_;
};

}  // namespace keymaster::ledger
