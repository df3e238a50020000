// Step 4 of prepare: measured burn, on the ledger's thread (ledger_pass.cpp calls it).
#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

void measure_burn(BurnMeasure& out, BurnTracker& burn, ledger::Ledger* ledger, Mode mode,
                  const funding::NetworkSnapshot& snap, const std::set<eth::Address>& busy,
                  const std::string& bank, double now) {
    if (!reads_ledger(mode)) {
        if (ledger) burn.load(*ledger, now);
    } else {
        out.spent = burn.measure(ledger, sends(mode) ? ledger : nullptr, snap, busy, now);
    }
    if (ledger) out.bank_rate = burn.bank_rate(*ledger, bank, now);
}

}  // namespace keymaster::chain::detail
