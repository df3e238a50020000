// The SQL several concerns of the ledger share, written once (not a public header): the two
// rules their queries agree on, the columns of an entry, a query's scope, multi-row statements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/ledger/types.hpp"
#include "store.hpp"

namespace keymaster::ledger::detail {

//! Mined: in a block, by a receipt of ours (confirmed, or reverted there: its fee was paid). As SQL
//! over the columns of table alias `t` (e.g. "u."; "" for none)...
[[nodiscard]] std::string mined(const std::string& t = "");
//! ...and of an entry's state and block.
[[nodiscard]] bool mined(State s, std::int64_t block);
//! A payment: what counts against the limits, once per nonce (replacements share it): every entry
//! but a dropped or failed one.
inline const std::string kPayment = "state IN ('intent','sent','confirmed','replaced')";

//! An amount as stored (text; "" for NULL: 0).
[[nodiscard]] Wei wei(const std::string& s);

//! The columns of an Entry, in the order read_entry() reads them.
inline constexpr const char* kColumns =
    "id, created, updated, network, chain_id, bank, recipient, home, role, amount, nonce, tx_type, max_fee, "
    "priority_fee, gas_price, gas_limit, raw, tx_hash, state, block, gas_used, fee_paid, replaced_by, error, sent_block, "
    "taken_block, l1_fee, operator_fee, block_hash, is_final, fee_estimated";
//! The Entry of the row `s` stands on (selected as kColumns).
[[nodiscard]] Entry read_entry(const Stmt& s);

//! Which rows of a bank a query reads: those journaled under a network's name, or those on a chain
//! (whatever network name they were journaled under). `sql` names the column as SCOPE.
struct Scope {
    const char* column;
    std::string name;
    std::int64_t chain = 0;
    [[nodiscard]] std::string sql(std::string text) const;
    void bind(Stmt& s, int at) const;
};
[[nodiscard]] Scope by_network(const std::string& network);
[[nodiscard]] Scope by_chain(std::uint64_t chain_id);

//! The sizes of the multi-row statements `n` rows are written with: few distinct statements (each
//! is prepared once), few statements in all.
[[nodiscard]] std::vector<std::size_t> row_chunks(std::size_t n);
//! `insert` followed by `size` copies of `row`, comma-separated.
[[nodiscard]] std::string rows_sql(const char* insert, const char* row, std::size_t size);

}  // namespace keymaster::ledger::detail
