#pragma once

#include <optional>
#include <string>
#include <vector>

#include "keymaster/funding/topology.hpp"

//! Measured burn (pure): what an account spent between polls, its rate over a window, its runway,
//! and the threshold and target sized from it (`runway`). Times are unix seconds, given.
namespace keymaster::funding {

//! What an account spent in one stretch of time: [start, end].
struct BurnBucket {
    double start = 0, end = 0;
    Wei spent = 0;
};

//! An account's measured spending as far back as it is kept, and the poll the next measurement
//! starts from.
struct BurnHistory {
    double since = 0;  //!< first observation (0: never observed)
    double time = 0;   //!< the last measurement
    Wei balance = 0;   //!< the balance then
    std::vector<BurnBucket> buckets;  //!< oldest first
    [[nodiscard]] bool observed() const { return since > 0; }
};

//! Spent between two polls: the decrease plus what our top-ups brought in between. A rise beyond
//! that is a transfer from someone else, not negative spending: 0.
[[nodiscard]] Wei spent_between(const Wei& before, const Wei& after, const Wei& arrived);

//! The length of one bucket for a window: a 24th of it, from 1 second to 1 hour.
[[nodiscard]] double bucket_length(double window);

//! A measurement's effect on the history, for the ledger.
struct Measured {
    Wei spent = 0;                      //!< spent since the last measurement
    std::optional<BurnBucket> bucket;   //!< the bucket that changed (spent > 0)
    bool state_changed = false;         //!< since/time/balance must be written
};

//! State is written at least this often even when nothing changed (keeps the ledger's lower bound
//! for arrivals recent).
inline constexpr double kBurnRefreshSeconds = 3600;

//! Records the balance read at `now`, `arrived` being what our confirmed top-ups brought since the
//! last measurement. The first observation only starts the history.
Measured observe(BurnHistory& h, double now, const Wei& balance, const Wei& arrived, double bucket_len);

//! Drops buckets that ended before `before`.
void prune(BurnHistory& h, double before);

//! The burn rate over the `window` ending at `now`.
struct BurnRate {
    Wei per_day = 0;     //!< base units per day
    double covered = 0;  //!< seconds of history inside the window
};

//! Spent inside the window (a bucket crossing its start counts in proportion) over the history it
//! covers. No history: zero.
[[nodiscard]] BurnRate burn_rate(const BurnHistory& h, double now, double window);
//! A rate over `spent` in `covered` seconds.
[[nodiscard]] BurnRate rate_of(const Wei& spent, double covered);

//! Enough history to size from: a tenth of the window or 5 minutes, whichever is shorter.
[[nodiscard]] bool enough_history(const BurnRate& r, double window);

//! How long `balance` lasts at `per_day`, in seconds; nullopt when nothing is spent (infinite).
[[nodiscard]] std::optional<double> runway_seconds(const Wei& balance, const Wei& per_day);

//! What lasts `seconds` at `per_day`.
[[nodiscard]] Wei burn_for(const Wei& per_day, double seconds);

//! An account's effective threshold and target this round.
struct Levels {
    Wei threshold = 0, target = 0;
    bool threshold_from_burn = false, target_from_burn = false;
    bool capped = false;  //!< the burn target was cut to runway.max
    Wei per_day = 0;      //!< the burn rate they came from (when from burn)
};

//! The larger of the amount and what the burn needs for runway.threshold / runway.target; the
//! target never above runway.max, the threshold never above the target. Without runway settings or
//! with too little history (enough_history): the amounts.
[[nodiscard]] Levels levels(const Account& a, const BurnRate& r);

//! The rule at effective levels: top up when balance < threshold, by target - balance.
Decision decide(const Levels& levels, const std::optional<Wei>& balance);

//! "6h of 0.8 ETH/day", for a level that came from burn.
[[nodiscard]] std::string burn_reason(double seconds, const Wei& per_day, unsigned decimals, const std::string& symbol);
//! Where levels from burn came from: "threshold 6h of 0.8 ETH/day, target 24h of 0.8 ETH/day,
//! capped at runway.max 5"; empty when the amounts apply.
[[nodiscard]] std::string describe_levels(const Account& a, const Levels& l, unsigned decimals, const std::string& symbol);

}  // namespace keymaster::funding
