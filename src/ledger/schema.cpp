#include <string>
#include <vector>

#include "db.hpp"

namespace keymaster::ledger::detail {

std::string schema_sql(const SchemaTypes& t) {
    const std::string id = t.id, real = t.real, integer = t.integer, tail = t.table_tail;
    return "CREATE TABLE IF NOT EXISTS topups (\n"
           "  id " + id + ",\n"
           "  created " + real + " NOT NULL, updated " + real + " NOT NULL,\n"
           "  network TEXT NOT NULL, chain_id " + integer + " NOT NULL, bank TEXT NOT NULL,\n"
           "  recipient TEXT NOT NULL, home TEXT NOT NULL, role TEXT NOT NULL,\n"
           "  amount TEXT NOT NULL, nonce " + integer + " NOT NULL, tx_type INTEGER NOT NULL,\n"
           "  max_fee TEXT NOT NULL, priority_fee TEXT NOT NULL, gas_price TEXT NOT NULL, gas_limit " + integer + " NOT NULL,\n"
           "  raw TEXT NOT NULL, tx_hash TEXT NOT NULL, state TEXT NOT NULL,\n"
           "  block " + integer + ", gas_used " + integer + ", fee_paid TEXT, replaced_by TEXT, error TEXT, sent_block " + integer + ");\n"
           "CREATE INDEX IF NOT EXISTS topups_pending ON topups(network, bank, state);\n"
           "CREATE INDEX IF NOT EXISTS topups_nonce ON topups(network, bank, nonce);\n"
           "CREATE INDEX IF NOT EXISTS topups_created ON topups(created);\n"
           "CREATE INDEX IF NOT EXISTS topups_chain ON topups(chain_id, bank, state);\n"
           "CREATE TABLE IF NOT EXISTS events (\n"
           "  id " + id + ", topup_id " + integer + " NOT NULL REFERENCES topups(id),\n"
           "  time " + real + " NOT NULL, state TEXT NOT NULL, detail TEXT);\n"
           "CREATE INDEX IF NOT EXISTS topups_settled ON topups(network, bank, state, updated);\n"
           "CREATE TABLE IF NOT EXISTS burn_state (\n"
           "  network TEXT NOT NULL, address TEXT NOT NULL, since " + real + " NOT NULL, time " + real + " NOT NULL,\n"
           "  balance TEXT NOT NULL, PRIMARY KEY (network, address))" + tail + ";\n"
           "CREATE TABLE IF NOT EXISTS bank_audit (\n"
           "  network TEXT NOT NULL, bank TEXT NOT NULL, next_nonce " + integer + " NOT NULL,\n"
           "  point_nonce " + integer + ", point_block " + integer + ", point_balance TEXT,\n"
           "  PRIMARY KEY (network, bank))" + tail + ";\n"
           "CREATE TABLE IF NOT EXISTS burn (\n"
           "  network TEXT NOT NULL, address TEXT NOT NULL, start " + real + " NOT NULL, stop " + real + " NOT NULL,\n"
           "  spent TEXT NOT NULL, PRIMARY KEY (network, address, start))" + tail + ";\n"
           "CREATE TABLE IF NOT EXISTS lease (\n"
           "  name TEXT NOT NULL PRIMARY KEY, holder TEXT NOT NULL, epoch " + integer + " NOT NULL,\n"
           "  expires " + real + " NOT NULL)" + tail + ";\n";
}

std::vector<Column> added_columns(const SchemaTypes& t) {
    // is_final: entries booked before it existed are final; confirmed() sets 0 until finalized().
    return {{"taken_block", t.integer}, {"l1_fee", "TEXT"},           {"operator_fee", "TEXT"},
            {"block_hash", "TEXT"},     {"is_final", "INTEGER DEFAULT 1"}, {"fee_estimated", "INTEGER DEFAULT 0"},
            {"confirmed_at", t.real}};
}

}  // namespace keymaster::ledger::detail
