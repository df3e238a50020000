// The bank audit: where each bank's audit of its nonces stands, and what the journal says our
// transactions in a range of nonces took from the bank and which of those nonces it holds (see
// funding::AuditState).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "keymaster/common/amount.hpp"
#include "keymaster/ledger/types.hpp"

namespace keymaster::ledger {

//! The bank audit's place and reads (a concern of the Ledger, which offers it; see ledger.hpp).
class BankAudit {
public:
    BankAudit(const BankAudit&) = delete;
    BankAudit& operator=(const BankAudit&) = delete;

    //! The bank audit: where the next one starts, and its last point with nothing unaccounted since
    //! (see funding::AuditState; none: never audited)...
    struct Audit {
        std::uint64_t next_nonce = 0;
        std::optional<std::uint64_t> point_nonce, point_block;
        Wei point_balance = 0;
    };
    //! The bank's audit place (none: never audited).
    [[nodiscard]] std::optional<Audit> audit(const std::string& network, const std::string& bank) const;
    //! Writes the bank's audit place (replacing the last).
    void save_audit(const std::string& network, const std::string& bank, const Audit& a);
    //! What mined transactions of ours with a nonce in [from, to) took from the bank: amounts of
    //! confirmed ones and the fees of every one (reverted included).
    Wei outflow(const std::string& network, const std::string& bank, std::uint64_t from, std::uint64_t to) const;
    //! The same, for the bank on a chain (whatever network names it was journaled under).
    Wei outflow(std::uint64_t chain_id, const std::string& bank, std::uint64_t from, std::uint64_t to) const;
    //! ...and what the ledger holds for each nonce in [from, to): mined (a receipt of ours,
    //! confirmed or reverted) and open (intent, sent, or replaced). Nonces with no entry are absent.
    struct NonceUse {
        bool mined = false, open = false;
    };
    std::map<std::uint64_t, NonceUse> nonce_uses(const std::string& network, const std::string& bank, std::uint64_t from,
                                                 std::uint64_t to) const;
    //! The same, for the bank on a chain (whatever network names it was journaled under).
    std::map<std::uint64_t, NonceUse> nonce_uses(std::uint64_t chain_id, const std::string& bank, std::uint64_t from,
                                                 std::uint64_t to) const;

protected:
    //! On the store a Ledger opened (and keeps open while this lives).
    explicit BankAudit(detail::Store& store) : store_(&store) {}
    ~BankAudit() = default;

private:
    detail::Store* store_;
};

}  // namespace keymaster::ledger
