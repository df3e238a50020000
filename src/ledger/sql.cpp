#include "sql.hpp"

namespace keymaster::ledger::detail {

std::string mined(const std::string& t) {
    return "(" + t + "state='confirmed' OR (" + t + "state='failed' AND " + t + "block>0))";
}

bool mined(State s, std::int64_t block) { return s == State::kConfirmed || (s == State::kFailed && block > 0); }

Wei wei(const std::string& s) { return s.empty() ? Wei(0) : Wei(s); }

Entry read_entry(const Stmt& s) {
    Entry e;
    e.id = s.i64(0);
    e.created = s.real(1);
    e.updated = s.real(2);
    e.network = s.text(3);
    e.chain_id = static_cast<std::uint64_t>(s.i64(4));
    e.bank = s.text(5);
    e.recipient = s.text(6);
    e.home = s.text(7);
    e.role = s.text(8);
    e.amount = wei(s.text(9));
    e.nonce = static_cast<std::uint64_t>(s.i64(10));
    e.tx_type = static_cast<int>(s.i64(11));
    e.max_fee = wei(s.text(12));
    e.priority_fee = wei(s.text(13));
    e.gas_price = wei(s.text(14));
    e.gas_limit = static_cast<std::uint64_t>(s.i64(15));
    e.raw = s.text(16);
    e.tx_hash = s.text(17);
    e.state = parse_state(s.text(18)).value_or(State::kFailed);
    e.block = static_cast<std::uint64_t>(s.i64(19));
    e.gas_used = static_cast<std::uint64_t>(s.i64(20));
    e.fee_paid = wei(s.text(21));
    e.replaced_by = s.text(22);
    e.error = s.text(23);
    e.sent_block = static_cast<std::uint64_t>(s.i64(24));
    e.taken_block = static_cast<std::uint64_t>(s.i64(25));
    e.l1_fee = wei(s.text(26));
    e.operator_fee = wei(s.text(27));
    e.block_hash = s.text(28);
    e.is_final = s.i64(29) != 0;
    e.fee_estimated = s.i64(30) != 0;
    return e;
}

std::string Scope::sql(std::string text) const {
    for (auto at = text.find("SCOPE"); at != std::string::npos; at = text.find("SCOPE", at)) text.replace(at, 5, column);
    return text;
}

void Scope::bind(Stmt& s, int at) const {
    if (name.empty()) s.bind(at, chain);
    else s.bind(at, name);
}

Scope by_network(const std::string& network) { return {"network", network, 0}; }
Scope by_chain(std::uint64_t chain_id) { return {"chain_id", "", static_cast<std::int64_t>(chain_id)}; }

std::vector<std::size_t> row_chunks(std::size_t n) {
    std::vector<std::size_t> out;
    for (const std::size_t size : {64U, 16U, 4U, 1U})
        for (; n >= size; n -= size) out.push_back(size);
    return out;
}

std::string rows_sql(const char* insert, const char* row, std::size_t size) {
    std::string sql = insert;
    for (std::size_t k = 0; k < size; ++k) sql += (k ? "," : "") + std::string(row);
    return sql;
}

}  // namespace keymaster::ledger::detail
