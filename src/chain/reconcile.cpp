#include <spdlog/spdlog.h>

#include <map>

#include "keymaster/common/text.hpp"
#include "keymaster/funding/pending.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/signer/signer.hpp"
#include "batch.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {
namespace {

namespace net = boost::asio;
using nlohmann::json;
using funding::NonceState;

// Entries sharing a nonce are one payment (replacements): judged together, oldest first.
using Groups = std::map<std::uint64_t, std::vector<std::size_t>>;

Groups group_by_nonce(const std::vector<ledger::Entry>& pending) {
    Groups g;
    for (std::size_t i = 0; i < pending.size(); ++i) g[pending[i].nonce].push_back(i);
    return g;
}

// The ledger's entries of this bank on this chain (whatever network name they were journaled
// under); before the chain id is known (a dry run's first Round), those of the network's name.
struct Ours {
    std::vector<ledger::Entry> pending, unfinal;
};

net::awaitable<Expected<Ours>> read_ours(const Context& ctx, bool with_unfinal) {
    const auto bank = ctx.signer->address().checksummed();
    Ours o;
    try {
        co_await ctx.in_ledger([&] {
            if (!ctx.net.chain_id) {
                o.pending = ctx.ledger->pending(ctx.net.name, bank);
                return;
            }
            o.pending = ctx.ledger->pending(*ctx.net.chain_id, bank);
            if (with_unfinal) o.unfinal = ctx.ledger->unfinal(*ctx.net.chain_id, bank);
        });
    } catch (const std::exception& e) {
        co_return problem_of(e, Fault::kLedger, "cannot read the ledger");
    }
    co_return o;
}

PendingAction action_for(const Context& ctx, const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members,
                         std::uint64_t block) {
    PendingAction a;
    a.entry = pending[members.back()];
    a.first_fees = fees_of(pending[members.front()]);
    // Waiting since it was sent (or sent again after a reorg: then `updated`, and its sent_block).
    const double since = a.entry.state == ledger::State::kSent ? std::max(a.entry.created, a.entry.updated) : a.entry.created;
    const bool stuck = !ctx.orphan && funding::is_stuck(since, a.entry.sent_block, ctx.net.replace_after, ctx.now(), block);
    a.kind = stuck ? PendingAction::Kind::kReplace : PendingAction::Kind::kRebroadcast;
    a.note = stuck ? "unmined for replaceAfter: commit replaces it with higher fees" : "unmined: commit sends it again";
    return a;
}

// The most an entry's fees can cost: its gas limit at its per-gas cap.
Wei worst_fee(const ledger::Entry& e) { return Wei(e.gas_limit) * (e.tx_type == 2 ? e.max_fee : e.gas_price); }

// An unresolved payment in the view: its account waits, its nonce is ours, the reserve counts it
// (another bank's, an orphan's: only its account waits).
void add_unresolved(const Context& ctx, LedgerView& view, PendingAction a) {
    if (auto to = eth::Address::parse(a.entry.recipient)) view.busy.insert(*to);
    if (ctx.orphan) {
        view.pending.push_back(std::move(a));
        return;
    }
    view.next_nonce = std::max(view.next_nonce.value_or(0), a.entry.nonce + 1);
    view.nonces.insert(a.entry.nonce);
    // One to be replaced this Round may cost up to its fee ceiling.
    const Wei fee = a.kind == PendingAction::Kind::kReplace
                        ? Wei(a.entry.gas_limit) * funding::replacement_ceiling(a.first_fees, ctx.net)
                        : worst_fee(a.entry);
    view.in_flight.push_back({a.entry.nonce, a.entry.role == "nonce-filler" ? Wei(0) : a.entry.amount, fee});
    view.pending.push_back(std::move(a));
}

// What the chain says, in one batch: its id, the bank's latest nonce, the latest block, the
// finalized block (where asked and answered); per unresolved entry its receipt and the
// transaction by hash; per mined entry not final its receipt and the block at its height.
struct ChainFacts {
    std::uint64_t chain_id = 0, latest_nonce = 0, block = 0;
    bool fresh = true;  // not older than the newest block seen before this batch
    struct Of {
        std::optional<rpc::ReceiptInfo> receipt;
        bool receipt_failed = false;
        std::optional<rpc::TxInfo> tx;  // by hash (pending entries)
        bool tx_failed = false;
    };
    std::vector<Of> pending;
};

// An entry's receipt as answered: none with `receipt_failed` when the call failed or the receipt is
// malformed; none without it when there is no receipt (JSON null).
void read_receipt(const Answers& answers, Answer<rpc::ReceiptInfo> receipt, ChainFacts::Of& o) {
    o.receipt_failed = !answers.answered(receipt);
    if (o.receipt_failed || answers.null(receipt)) return;
    o.receipt = answers.get(receipt);
    o.receipt_failed = !o.receipt;
}

// An entry by hash as answered (none: not held, or malformed; `tx_failed` when the call failed).
void read_tx(const Answers& answers, Answer<rpc::TxInfo> tx, ChainFacts::Of& o) {
    o.tx_failed = !answers.answered(tx);
    o.tx = answers.get(tx);
}

// Each unresolved entry's calls of the batch.
struct EntryCalls {
    Answer<rpc::ReceiptInfo> receipt;
    Answer<rpc::TxInfo> tx;
};

net::awaitable<Expected<ChainFacts>> ask_chain(Context& ctx, const Ours& ours) {
    Batch b(ctx.net.batch_size);
    const auto chain = b.add<std::uint64_t>({"eth_chainId", json::array()});
    const auto latest = b.add<std::uint64_t>({"eth_getTransactionCount", json::array({ctx.signer->address().lower(), "latest"})});
    const auto block = b.add<std::uint64_t>({"eth_blockNumber", json::array()});
    std::vector<EntryCalls> asked;
    for (const auto& e : ours.pending) {
        EntryCalls c;
        c.receipt = b.add<rpc::ReceiptInfo>({"eth_getTransactionReceipt", json::array({e.tx_hash})});
        c.tx = b.add<rpc::TxInfo>({"eth_getTransactionByHash", json::array({e.tx_hash})});
        asked.push_back(c);
    }
    Answers answers;
    try {
        answers = Answers(co_await ctx.client.batch(b.take(), b.riders(), rpc::RpcClient::Attempts::kRetry, Batch::kLaterRiders));
    } catch (const std::exception& e) {
        co_return Problem{Fault::kPoll, std::string("cannot reconcile the ledger: ") + e.what()};
    }
    const auto chain_id = answers.get(chain), nonce = answers.get(latest), head = answers.get(block);
    if (!chain_id || !nonce || !head)
        co_return Problem{Fault::kPoll, "cannot reconcile the ledger: eth_chainId, eth_getTransactionCount or eth_blockNumber failed"};
    if (ctx.net.chain_id && *chain_id != *ctx.net.chain_id)
        co_return Problem{Fault::kChainId, "chain id mismatch: expected " + std::to_string(*ctx.net.chain_id) +
                                               ", endpoint reports " + std::to_string(*chain_id) + "; the ledger is not touched"};
    ChainFacts f;
    f.chain_id = *chain_id;
    f.latest_nonce = *nonce;
    f.block = *head;
    // As fresh as its oldest request (a provider may answer each from another backend).
    f.fresh = !funding::is_stale(std::min(*head, b.oldest_head(answers).value_or(*head)), ctx.block_at_least(0));
    ctx.saw(*head);
    for (const auto& c : asked) {
        ChainFacts::Of o;
        read_receipt(answers, c.receipt, o);
        read_tx(answers, c.tx, o);
        f.pending.push_back(std::move(o));
    }
    for (const auto& o : f.pending)
        if (o.receipt) ctx.saw(o.receipt->block);
    co_return f;
}

// --- The search for the transaction that used a nonce (only for nonces seen taken for a while
// with no receipt of ours: a node without receipts, or a drop) ---

// Who used `nonce` of the bank, from the chain's blocks: the first block where the bank's nonce
// count passes it (probed 16 heights a batch between `lo`, where it had not, and `hi`), then that
// block's transactions. Any failed query leaves it unknown.
struct NonceUse {
    funding::NonceUser user = funding::NonceUser::kUnknown;
    std::optional<rpc::TxInfo> tx;  // the transaction that used it
};

// One batch of the search, `chain` its eth_chainId: its answers, or none when it failed or came
// from another chain (what it would prove is written to the ledger).
net::awaitable<std::optional<Answers>> ask_on_chain(Context& ctx, Calls calls, Answer<std::uint64_t> chain) {
    Answers answers;
    try {
        answers = Answers(co_await ctx.client.batch(calls.take()));
    } catch (const std::exception&) {
        co_return std::nullopt;
    }
    const auto id = answers.get(chain);
    if (!id || !ctx.net.chain_id || *id != *ctx.net.chain_id) co_return std::nullopt;
    co_return answers;
}

net::awaitable<std::optional<std::uint64_t>> block_using(Context& ctx, std::uint64_t nonce, std::uint64_t lo, std::uint64_t hi) {
    const auto bank = ctx.signer->address().lower();
    while (hi - lo > 1) {
        Calls calls;
        const auto chain = calls.add<std::uint64_t>({"eth_chainId", json::array()});
        std::vector<std::pair<std::uint64_t, Answer<std::uint64_t>>> counts;  // (height, the bank's nonce count there)
        const std::uint64_t step = std::max<std::uint64_t>(1, (hi - lo) / 17);
        for (std::uint64_t h = lo + step; h < hi && counts.size() < 16; h += step)
            counts.emplace_back(h, calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({bank, to_quantity(Wei(h))})}));
        const auto answers = co_await ask_on_chain(ctx, std::move(calls), chain);
        if (!answers) co_return std::nullopt;
        std::uint64_t next_lo = lo, next_hi = hi;
        for (const auto& [height, asked] : counts) {
            const auto count = answers->get(asked);
            if (!count) co_return std::nullopt;  // (a pruned node has no state there)
            if (*count > nonce) {
                next_hi = height;
                break;
            }
            next_lo = height;
        }
        lo = next_lo;
        hi = next_hi;
    }
    co_return hi;
}

// The transaction of the bank with `nonce` in `block` (a block with full transactions), if any.
std::optional<rpc::TxInfo> bank_tx_in(const json& block, const std::string& bank, std::uint64_t nonce, std::uint64_t height) {
    if (!block.is_object() || !block.contains("transactions") || !block["transactions"].is_array()) return std::nullopt;
    for (const auto& t : block["transactions"]) {
        auto tx = rpc::as_tx(t);
        if (!tx || tx->from != bank || tx->nonce != nonce) continue;
        if (tx->block_hash.empty() && block.contains("hash") && block["hash"].is_string()) tx->block_hash = block["hash"].get<std::string>();
        if (!tx->block) tx->block = height;
        return tx;
    }
    return std::nullopt;
}

// The blocks (lo, hi] with their transactions, 16 a request, searched for the bank's `nonce`: no
// state needed (a node that keeps only recent state still serves bodies). `found` false: every
// block answered and none holds it; none: a query failed.
net::awaitable<std::optional<std::optional<rpc::TxInfo>>> scan_bodies(Context& ctx, std::uint64_t nonce, std::uint64_t lo,
                                                                      std::uint64_t hi) {
    const auto bank = ctx.signer->address().lower();
    for (std::uint64_t from = lo + 1; from <= hi; from += 16) {
        Calls calls;
        const auto chain = calls.add<std::uint64_t>({"eth_chainId", json::array()});
        std::vector<std::pair<std::uint64_t, Answer<json>>> blocks;  // (height, its block with its transactions)
        for (std::uint64_t h = from; h <= std::min(hi, from + 15); ++h)
            blocks.emplace_back(h, calls.add<json>({"eth_getBlockByNumber", json::array({to_quantity(Wei(h)), true})}));
        const auto answers = co_await ask_on_chain(ctx, std::move(calls), chain);
        if (!answers) co_return std::nullopt;
        for (const auto& [height, block] : blocks) {
            if (!answers->answered(block) || answers->null(block)) co_return std::nullopt;
            if (auto tx = bank_tx_in(*answers->call(block).result, bank, nonce, height))
                co_return std::optional<rpc::TxInfo>(std::move(tx));
        }
    }
    co_return std::optional<rpc::TxInfo>{};
}

// Blocks a body scan reads at most (beyond: the bank's nonce count over heights, which needs state).
constexpr std::uint64_t kScanBlocks = 64;

// Who used the nonce: between the block before the nonce's first transaction was signed and the
// block it was first seen taken. A short stretch is scanned block by block; a long one is searched
// by the bank's nonce count (an archive's state), then its block read.
net::awaitable<NonceUse> who_used(Context& ctx, const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members,
                                  std::uint64_t newest, std::optional<std::uint64_t> taken_since) {
    const std::uint64_t nonce = pending[members.front()].nonce;
    std::uint64_t lo = newest;
    for (auto i : members) lo = std::min(lo, pending[i].sent_block);
    lo = lo > 0 ? lo - 1 : 0;
    const std::uint64_t hi = std::max(lo, std::min(newest, taken_since.value_or(newest)));
    NonceUse out;
    std::optional<std::optional<rpc::TxInfo>> found;
    if (hi - lo <= kScanBlocks) {
        found = co_await scan_bodies(ctx, nonce, lo, hi);
    } else if (const auto height = co_await block_using(ctx, nonce, lo, newest)) {
        found = co_await scan_bodies(ctx, nonce, *height - 1, *height);
    }
    if (!found || !*found) co_return out;  // a failed query, or not found where it must be: unknown
    auto& tx = **found;
    out.user = funding::NonceUser::kOther;
    for (auto i : members)
        if (to_lower(pending[i].tx_hash) == tx.hash) out.user = funding::NonceUser::kOurs;
    out.tx = std::move(tx);
    co_return out;
}

// --- Recording what the chain proved (inside one ledger transaction) ---

// A receipt of ours: the nonce's payment is mined; its other transactions were replaced by it.
void book_receipt(Context& ctx, const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members, std::size_t mined,
                  const rpc::ReceiptInfo& rec, LedgerView& view) {
    auto done = pending[mined];
    const auto paid = paid_for(ctx, done, rec);
    done.fee_paid = paid.total();
    done.l1_fee = paid.l1;
    done.operator_fee = paid.operator_fee;
    ctx.ledger->confirmed(done.id, rec.success, rec.block, rec.gas_used, done.fee_paid, done.l1_fee, done.operator_fee, rec.block_hash);
    for (auto i : members)
        if (i != mined) ctx.ledger->replaced(pending[i].id, done.tx_hash);
    done.state = rec.success ? ledger::State::kConfirmed : ledger::State::kFailed;
    done.block = rec.block;
    done.block_hash = rec.block_hash;
    done.is_final = false;
    view.log.push_back(done.tx_hash + (rec.success ? " confirmed" : " reverted") + " in block " + std::to_string(rec.block));
    view.unfinal.push_back({done, ctx.orphan});  // seen by the poll too: a reorg before it is no second payment
    view.settled.push_back(std::move(done));
}

// Mined as the node shows it by hash or in a block, with no receipt: confirmed at the most its
// fee can be (its gas limit at the price it paid where shown, else its cap), marked estimated
// until a receipt is seen while it is not final.
void book_without_receipt(Context& ctx, const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members,
                          const rpc::TxInfo& tx, LedgerView& view) {
    std::size_t mined = members.back();
    for (auto i : members)
        if (to_lower(pending[i].tx_hash) == tx.hash) mined = i;
    auto done = pending[mined];
    const Wei price = tx.gas_price.value_or(done.tx_type == 2 ? done.max_fee : done.gas_price);
    done.fee_paid = Wei(done.gas_limit) * price;
    ctx.ledger->confirmed(done.id, true, *tx.block, done.gas_limit, done.fee_paid, 0, 0, tx.block_hash, true);
    for (auto i : members)
        if (i != mined) ctx.ledger->replaced(pending[i].id, done.tx_hash);
    done.state = ledger::State::kConfirmed;
    done.block = *tx.block;
    done.block_hash = tx.block_hash;
    done.is_final = false;
    done.fee_estimated = true;
    view.unfinal.push_back({done, ctx.orphan});
    view.log.push_back(done.tx_hash + " mined in block " + std::to_string(*tx.block) +
                       " (the node serves no receipt for it: fee booked at most " + done.fee_paid.str() + " wei, estimated)");
    view.settled.push_back(std::move(done));
}

void book_dropped(Context& ctx, const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members,
                  const rpc::TxInfo& by, LedgerView& view) {
    const std::uint64_t nonce = pending[members.front()].nonce;
    const std::string why = "nonce " + std::to_string(nonce) + " used by " + by.hash + " in block " + std::to_string(by.block.value_or(0)) +
                            ", not ours";
    for (auto i : members) {
        ctx.ledger->mark(pending[i].id, ledger::State::kDropped, why);
        auto done = pending[i];
        done.state = ledger::State::kDropped;
        view.settled.push_back(std::move(done));
    }
    view.log.push_back(pending[members.back()].tx_hash + " dropped: " + why + "; the account is decided afresh");
}

// What one nonce's evidence says (no ledger change), from the batch.
funding::NonceJudgement judge(const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members, const ChainFacts& f,
                              std::uint64_t newest) {
    funding::NonceEvidence ev;
    std::optional<std::uint64_t> since;
    for (auto i : members) {
        const auto& o = f.pending[i];
        ev.receipt = ev.receipt || o.receipt.has_value();
        ev.mined_by_hash = ev.mined_by_hash || (o.tx && o.tx->block);
        ev.failed_query = ev.failed_query || o.receipt_failed || o.tx_failed;
        if (pending[i].taken_block) since = std::min(since.value_or(pending[i].taken_block), pending[i].taken_block);
    }
    ev.taken = f.latest_nonce > pending[members.front()].nonce;
    return funding::judge_nonce(ev, since, newest);
}

// One nonce's fate, recorded (inside the caller's transaction) and added to `view`. `use`: what
// the search found, for a kSearch nonce.
void settle_nonce(Context& ctx, const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members, const ChainFacts& f,
                  const funding::NonceJudgement& j, const NonceUse& use, std::uint64_t newest, LedgerView& view) {
    const std::uint64_t nonce = pending[members.front()].nonce;
    switch (j.state) {
        case NonceState::kMined:
            for (auto i : members)
                if (f.pending[i].receipt) return book_receipt(ctx, pending, members, i, *f.pending[i].receipt, view);
            break;
        case NonceState::kMinedNoReceipt:
            for (auto i : members)
                if (f.pending[i].tx && f.pending[i].tx->block) return book_without_receipt(ctx, pending, members, *f.pending[i].tx, view);
            break;
        case NonceState::kSearch:
            if (use.user == funding::NonceUser::kOurs) return book_without_receipt(ctx, pending, members, *use.tx, view);
            if (use.user == funding::NonceUser::kOther && f.fresh) return book_dropped(ctx, pending, members, *use.tx, view);
            break;
        case NonceState::kUnknown:
        case NonceState::kTaken:
        case NonceState::kUnmined: break;
    }
    const bool taken = j.state == NonceState::kTaken || j.state == NonceState::kSearch;
    if (j.state != NonceState::kUnknown) {
        const std::uint64_t want = taken ? *j.taken_since : 0;
        for (auto i : members)
            if (pending[i].taken_block != want) ctx.ledger->taken(pending[i].id, want);
    }
    auto a = action_for(ctx, pending, members, newest);
    if (j.state != NonceState::kUnmined) {
        a.kind = PendingAction::Kind::kWait;
        a.note = j.state == NonceState::kUnknown
                     ? "the node did not answer about it: it waits"
                     : "nonce taken since block " + std::to_string(*j.taken_since) +
                           ", no receipt of ours yet: the chain's blocks decide whether it is ours (mined) or another's (dropped)";
        view.log.push_back(a.entry.tx_hash + " (nonce " + std::to_string(nonce) + "): " + a.note);
    }
    add_unresolved(ctx, view, std::move(a));
}

// A mined entry not final yet, re-checked against the poll's view: still there (final when its
// block is, and the view is fresh), moved to another block (booked there), or gone (sent again:
// the account waits, the same bytes go out again). Nothing concluded: its account waits this Round.
void recheck(Context& ctx, const ledger::Entry& e, const funding::MinedEvidence& ev, const std::optional<rpc::ReceiptInfo>& rec,
             const funding::NetworkSnapshot& snap, LedgerView& view) {
    const auto verdict = funding::recheck_mined({e.block, e.block_hash}, ev);
    if (verdict == funding::Recheck::kUnknown) {
        if (ev.hash_at_height != e.block_hash)  // its block not seen there (gone, or the query failed): no second top-up meanwhile
            if (auto to = eth::Address::parse(e.recipient)) view.busy.insert(*to);
        return;
    }
    if (verdict == funding::Recheck::kHolds) {
        if (rec && (e.fee_estimated || e.block_hash.empty())) {  // the receipt came at last: the fee as paid, the block's hash
            const auto paid = paid_for(ctx, e, *rec);
            ctx.ledger->confirmed(e.id, rec->success, rec->block, rec->gas_used, paid.total(), paid.l1, paid.operator_fee,
                                  rec->block_hash);
            view.log.push_back(e.tx_hash + ": receipt seen, fee booked as paid");
        }
        const auto depth = ctx.net.finality.value_or(funding::default_finality(snap.chain_id));
        const bool seen_there = ev.fresh && ev.hash_at_height == e.block_hash;
        if (seen_there && funding::is_final(e.block, ctx.block_at_least(snap.block), depth, ctx.net.finality.has_value(), snap.finalized))
            ctx.ledger->finalized(e.id);
        return;
    }
    if (verdict == funding::Recheck::kMoved) {
        const auto paid = paid_for(ctx, e, *rec);
        ctx.ledger->confirmed(e.id, rec->success, rec->block, rec->gas_used, paid.total(), paid.l1, paid.operator_fee, rec->block_hash);
        ++view.reorged;
        view.log.push_back(e.tx_hash + " reorged: block " + std::to_string(e.block) + " no longer holds it; mined again in block " +
                           std::to_string(rec->block));
        if (auto to = eth::Address::parse(e.recipient)) view.busy.insert(*to);  // the poll's balance may predate it: wait a Round
        return;
    }
    const std::string why = "reorged: block " + std::to_string(e.block) + " (" + e.block_hash + ") is no longer the chain's";
    const std::uint64_t now_block = ctx.block_at_least(snap.block);
    ctx.ledger->reorged(e.id, why, now_block);  // replaceAfter counts from here: it is back in flight now
    ++view.reorged;
    view.log.push_back(e.tx_hash + " " + why + "; it is unresolved again (the account waits, the same bytes are sent again if the node lost them)");
    auto back = e;
    back.state = ledger::State::kSent;
    back.block = 0;
    back.block_hash.clear();
    back.sent_block = now_block;
    back.updated = ctx.now();
    PendingAction a;
    a.entry = back;
    a.first_fees = fees_of(back);
    a.kind = PendingAction::Kind::kRebroadcast;
    a.note = "reorged out of block " + std::to_string(e.block) + ": commit sends it again if the node lost it";
    add_unresolved(ctx, view, std::move(a));
}

// The receipts a re-check needs: of entries whose block at their height is not the one booked (a
// reorg, or a backend behind or on another fork), and of those whose fee is still estimated. One
// batch with its chain id, only then (another chain's answers: nothing concluded).
net::awaitable<std::map<std::int64_t, ChainFacts::Of>> receipts_for(Context& ctx, const std::vector<LedgerView::Mined>& unfinal,
                                                                   const funding::NetworkSnapshot& snap) {
    std::map<std::int64_t, ChainFacts::Of> out;
    Calls calls;
    const auto chain = calls.add<std::uint64_t>({"eth_chainId", json::array()});
    std::vector<std::pair<const ledger::Entry*, Answer<rpc::ReceiptInfo>>> asked;
    for (const auto& m : unfinal) {
        const auto it = snap.hash_at.find(m.entry.block);
        const bool moved = it != snap.hash_at.end() && it->second && *it->second != m.entry.block_hash;
        if (moved || m.entry.fee_estimated)
            asked.emplace_back(&m.entry, calls.add<rpc::ReceiptInfo>({"eth_getTransactionReceipt", json::array({m.entry.tx_hash})}));
    }
    if (asked.empty()) co_return out;
    Answers answers;
    try {
        answers = Answers(co_await ctx.client.batch(calls.take()));
    } catch (const std::exception&) {
    }
    const auto id = answers.get(chain);
    const bool ours = id && *id == snap.chain_id;
    for (const auto& [e, receipt] : asked) {
        auto& o = out[e->id];
        o.receipt_failed = true;
        if (ours) read_receipt(answers, receipt, o);
        if (o.receipt) ctx.saw(o.receipt->block);
    }
    co_return out;
}

}  // namespace

net::awaitable<Expected<LedgerView>> reconcile(Context& ctx) {
    LedgerView view;
    const auto read = co_await read_ours(ctx, true);
    if (!read) co_return read.error();
    const auto& ours = *read;
    for (const auto& e : ours.unfinal) {
        if (ctx.seen && !ctx.seen->seeded) ctx.seen->seed(e.block);  // what the chain showed, even to an earlier process
        view.unfinal.push_back({e, ctx.orphan});
    }
    if (ctx.seen && !ctx.orphan) ctx.seen->seeded = true;
    if (ours.pending.empty()) co_return view;  // (the mined ones are re-checked against the poll)
    const auto asked = co_await ask_chain(ctx, ours);
    if (!asked) co_return asked.error();
    const auto& facts = *asked;
    const std::uint64_t newest = ctx.block_at_least(facts.block);
    const auto groups = group_by_nonce(ours.pending);
    std::map<std::uint64_t, funding::NonceJudgement> judged;
    std::map<std::uint64_t, NonceUse> used;
    for (const auto& [nonce, members] : groups) {
        judged[nonce] = judge(ours.pending, members, facts, newest);
        if (judged[nonce].state == NonceState::kSearch)
            used[nonce] = co_await who_used(ctx, ours.pending, members, newest, judged[nonce].taken_since);
    }
    try {
        co_await ctx.in_ledger([&] {
            ctx.ledger->atomically([&] {
                for (const auto& [nonce, members] : groups)
                    settle_nonce(ctx, ours.pending, members, facts, judged[nonce], used[nonce], newest, view);
            });
        });
    } catch (const std::exception& e) {
        co_return problem_of(e, Fault::kLedger, "ledger cannot be written");
    }
    co_return view;
}

namespace {

// A bank this process holds no key of: its address, for reading the chain and the ledger.
class WatchOnly final : public signer::Signer {
public:
    explicit WatchOnly(eth::Address a) : address_(a) {}
    eth::Address address() const override { return address_; }
    net::awaitable<signer::SignResult> sign(const Hash32&) override {
        co_return signer::sign_failure("bank " + address_.checksummed() + " is no longer configured: its key is not held");
    }

private:
    eth::Address address_;
};

}  // namespace

namespace {

// Another bank's top-ups in flight (or mined, not final) that someone else settles: their accounts
// wait all the same (from the ledger alone: nothing asked, nothing written).
void wait_for_others(const Context& ctx, const eth::Address& bank, LedgerView& view) {
    const auto id = bank.checksummed();
    for (const auto& list : {ctx.ledger->pending(*ctx.net.chain_id, id), ctx.ledger->unfinal(*ctx.net.chain_id, id)})
        for (const auto& e : list)
            if (auto to = eth::Address::parse(e.recipient)) view.busy.insert(*to);
}

}  // namespace

net::awaitable<std::optional<Problem>> reconcile_orphans(Context& ctx, const std::set<std::string>& configured, LedgerView& view) {
    if (!ctx.net.chain_id) co_return std::nullopt;
    std::vector<std::string> banks;
    try {
        co_await ctx.in_ledger([&] { banks = ctx.ledger->unresolved_banks(*ctx.net.chain_id); });
    } catch (const std::exception& e) {
        co_return problem_of(e, Fault::kLedger, "cannot read the ledger");
    }
    for (const auto& bank : banks) {
        const auto address = eth::Address::parse(bank);
        if (!address || configured.count(address->lower())) continue;
        // On a shared ledger only while nobody sends from it (another deployment's bank is not an
        // orphan): its sender lease, for this Round.
        if (ctx.sender) {
            const auto name = sender_lease_name(*ctx.net.chain_id, *address);
            bool mine = false;
            try {
                co_await ctx.in_ledger([&] {
                    mine = ctx.ledger->claim_lease(name, ctx.sender->holder, ctx.sender->seconds).mine;
                    if (!mine) wait_for_others(ctx, *address, view);
                });
            } catch (const std::exception& e) {
                co_return problem_of(e, Fault::kLedger, "cannot claim the sender lease " + name);
            }
            if (!mine) continue;
            view.orphan_leases.push_back(name);
        }
        Context other = ctx;
        other.signer = std::make_shared<WatchOnly>(*address);
        other.orphan = true;
        other.sender = nullptr;  // nothing of it is journaled
        auto settled = co_await reconcile(other);
        if (!settled) co_return settled.error();
        view.orphans.push_back(address->checksummed());
        for (auto& a : settled->pending) view.pending.push_back(std::move(a));
        for (auto& e : settled->settled) view.settled.push_back(std::move(e));
        for (auto& m : settled->unfinal) view.unfinal.push_back({std::move(m.entry), true});
        for (auto& l : settled->log) view.log.push_back("bank " + address->checksummed() + " (no longer configured): " + l);
        view.busy.insert(settled->busy.begin(), settled->busy.end());
        view.reorged += settled->reorged;
    }
    co_return std::nullopt;
}

net::awaitable<std::optional<Problem>> recheck_unfinal(Context& ctx, const funding::NetworkSnapshot& snap, bool fresh, LedgerView& view) {
    if (view.unfinal.empty() || !snap.reachable) co_return std::nullopt;
    const auto receipts = co_await receipts_for(ctx, view.unfinal, snap);
    try {
        co_await ctx.in_ledger([&] { ctx.ledger->atomically([&] {
            for (const auto& m : view.unfinal) {
                if (!snap.hash_at.count(m.entry.block)) continue;  // not asked this poll (kHeightsEachEnd): next time
                funding::MinedEvidence ev;
                std::optional<rpc::ReceiptInfo> rec;
                if (const auto it = receipts.find(m.entry.id); it != receipts.end()) {
                    rec = it->second.receipt;
                    ev.receipt_failed = it->second.receipt_failed;
                    if (rec) ev.receipt = std::make_pair(rec->block, rec->block_hash);
                }
                if (const auto it = snap.hash_at.find(m.entry.block); it != snap.hash_at.end()) ev.hash_at_height = it->second;
                ev.fresh = fresh;
                Context as = ctx;
                as.orphan = m.orphan;
                recheck(as, m.entry, ev, rec, snap, view);
            }
        }); });
    } catch (const std::exception& e) {
        co_return problem_of(e, Fault::kLedger, "ledger cannot be written");
    }
    co_return std::nullopt;
}

std::vector<std::uint64_t> unfinal_heights(const LedgerView& view) {
    std::set<std::uint64_t> h;
    for (const auto& m : view.unfinal) h.insert(m.entry.block);
    if (h.size() <= 2 * kHeightsEachEnd) return {h.begin(), h.end()};
    // The oldest (that they become final) and the newest (the likeliest to be reorged).
    std::vector<std::uint64_t> out(h.begin(), std::next(h.begin(), kHeightsEachEnd));
    out.insert(out.end(), std::prev(h.end(), kHeightsEachEnd), h.end());
    return out;
}

net::awaitable<Expected<LedgerView>> pending_view(const Context& ctx) {
    LedgerView view;
    const auto read = co_await read_ours(ctx, false);
    if (!read) co_return read.error();
    const auto& pending = read->pending;
    for (const auto& [nonce, members] : group_by_nonce(pending)) add_unresolved(ctx, view, action_for(ctx, pending, members, 0));
    co_return view;
}

namespace {

// The very same bytes again, to a node that lost them (eviction, restart), so a nonce never stays a
// gap. Only a held verdict changes the ledger (intent -> sent).
net::awaitable<void> rebroadcast(Context& ctx, std::vector<ledger::Entry> candidates) {
    auto lost = co_await lost_by_node(ctx, std::move(candidates));
    if (lost.empty()) co_return;
    struct Again {
        ledger::Entry entry;
        Sent sent;
    };
    std::vector<Again> again;
    again.reserve(lost.size());
    for (auto& e : lost) again.push_back({std::move(e), {}});
    std::vector<Outgoing> out;
    for (auto& a : again) out.push_back({&a.entry, &a.sent});
    co_await broadcast(ctx, out);
    try {
        co_await ctx.in_ledger([&] {
            ctx.ledger->atomically([&] {
                for (const auto& a : again) record_send(ctx, a.entry, a.sent, SendKind::kAgain, "broadcast on reconcile");
            });
        });
    } catch (const std::exception& e) {
        spdlog::error("{}: ledger cannot record a re-broadcast ({}); the next round settles it", ctx.net.name, e.what());
    }
    for (const auto& a : again)
        spdlog::info("{}: ledger: {} (nonce {}) not mined and not held by the node: broadcast again{}", ctx.net.name, a.entry.tx_hash,
                     a.entry.nonce, a.sent.hint == SendHint::kHash ? "" : " (" + a.sent.why() + ")");
}

}  // namespace

net::awaitable<StepReport> resolve_pending(Context& ctx, const std::vector<PendingAction>& pending, std::uint64_t block) {
    StepReport report;
    std::vector<ledger::Entry> again;
    for (const auto& a : pending) {
        if (a.kind == PendingAction::Kind::kWait) continue;
        if (a.kind == PendingAction::Kind::kReplace) {
            auto rep = co_await replace_stuck(ctx, a.entry, a.first_fees, block);
            report += std::move(rep.report);
            if (rep.entry) continue;
        }
        again.push_back(a.entry);
    }
    co_await rebroadcast(ctx, again);
    co_return report;
}

}  // namespace keymaster::chain::detail
