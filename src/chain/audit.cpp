// Step 4b of prepare: the bank audit, on the ledger's thread (ledger_pass.cpp calls it).
#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

namespace {

// The bank audit's place is kept per chain and bank ("chain:<id>" in bank_audit's network
// column), like its nonces: a renamed network's audit carries on. (A ledger's place kept under a
// network's name by an earlier version is left: the bank's first audit here starts where it stands.)
std::string audit_key(const funding::NetworkSnapshot& snap) {
    return "chain:" + std::to_string(snap.chain_id);
}

// Written only when it moved: an idle bank costs no ledger write per poll. A point that moved
// only in block (same nonce and balance) is not written either.
void save_audit(ledger::Ledger& ledger, const std::string& key, const std::string& bank,
                const std::optional<ledger::Ledger::Audit>& kept, const funding::AuditState& state) {
    ledger::Ledger::Audit a{state.next, std::nullopt, std::nullopt, Wei(0)};
    if (state.point) {
        a.point_nonce = state.point->nonce;
        a.point_block = state.point->block;
        a.point_balance = state.point->balance;
    }
    if (kept && kept->next_nonce == a.next_nonce && kept->point_nonce == a.point_nonce &&
        kept->point_balance == a.point_balance)
        return;
    ledger.save_audit(key, bank, a);
}

// The reads and the write.
void audit_in_ledger(ledger::Ledger& ledger, const funding::NetworkSnapshot& snap, const std::string& bank,
                     const funding::AuditPoint& here, bool quiet, AuditFound& out) {
    const auto kept = ledger.audit(audit_key(snap), bank);
    funding::AuditStep step;
    if (!kept) {
        step.state = {here.nonce, quiet ? std::optional<funding::AuditPoint>(here) : std::nullopt};
    } else {
        funding::AuditState before{kept->next_nonce, std::nullopt};
        if (kept->point_nonce)
            before.point =
                funding::AuditPoint{*kept->point_nonce, kept->point_block.value_or(0), kept->point_balance};
        std::map<std::uint64_t, funding::NonceRecord> records;
        for (const auto& [n, u] : ledger.nonce_uses(snap.chain_id, bank, before.next, here.nonce))
            records[n] = {u.mined, u.open};
        const auto walk = funding::audit_nonces(before.next, here.nonce, records);
        step = funding::next_audit_state(before, walk, here, quiet);
        out.unaccounted = walk.unaccounted;
        if (step.compare)
            out.unexplained = funding::unexplained_outflow(
                before.point->balance, here.balance,
                ledger.outflow(snap.chain_id, bank, before.point->nonce, here.nonce));
    }
    save_audit(ledger, audit_key(snap), bank, kept, step.state);
}

}  // namespace

bool audits(Mode mode, const ledger::Ledger* ledger, const funding::NetworkSnapshot& snap) {
    return sends(mode) && ledger && snap.bank_latest_nonce && snap.bank_balance;
}

// From the poll (no round trip of its own): every nonce the bank used since the last audit must be
// a mined transaction of ours, and, where nothing of the bank's was pending at the poll (so its
// balance and nonce describe one state), what the bank lost since the last point with nothing
// unaccounted must be what those took. A bank's first audit starts where it stands.
void audit_bank(AuditFound& out, ledger::Ledger& ledger, const funding::NetworkSnapshot& snap,
                const std::string& bank) {
    const funding::AuditPoint here{*snap.bank_latest_nonce, snap.block, *snap.bank_balance};
    const bool quiet = snap.bank_nonce == snap.bank_latest_nonce;
    audit_in_ledger(ledger, snap, bank, here, quiet, out);
}

}  // namespace keymaster::chain::detail
