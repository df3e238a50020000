// The error currency above the pure core: Fault (metric scope, exit code) and Problem.
#include <catch2/catch.hpp>

#include <string_view>
#include <tuple>
#include <vector>

#include "keymaster/common/fault.hpp"

using namespace keymaster;


TEST_CASE("faults: the metric scope and the exit code come from the type", "[fault]") {
    const std::vector<std::tuple<Fault, std::string_view, int>> rows = {
        {Fault::kNone, "", 0},           {Fault::kConfig, "config", 2},
        {Fault::kPoll, "poll", 1},       {Fault::kChainId, "chain_id", 1},
        {Fault::kBalance, "balance", 1}, {Fault::kBalanceMismatch, "balance_mismatch", 1},
        {Fault::kBankLow, "bank_low", 1}, {Fault::kBank, "bank", 1},
        {Fault::kLedger, "ledger", 1},   {Fault::kLimit, "limit", 1},
        {Fault::kTopUp, "topup", 1},     {Fault::kFees, "topup", 1},
        {Fault::kSigning, "topup", 1},   {Fault::kInternal, "internal", 1},
        {Fault::kDeclined, "declined", 1},
        {Fault::kSender, "sender", 2},
    };
    for (const auto& [fault, scope, exit] : rows) {
        INFO(static_cast<int>(fault));
        CHECK(fault_scope(fault) == scope);
        CHECK(fault_exit_code(fault) == exit);
        CHECK(make_error_code(fault).category() == fault_category());
        CHECK_FALSE(make_error_code(fault).message().empty());
    }
    for (auto scope : network_scopes()) CHECK_FALSE(scope.empty());
    const RoundError e(Fault::kLedger, "ledger cannot be written");
    CHECK(e.fault() == Fault::kLedger);
    CHECK(e.problem() == Problem{Fault::kLedger, "ledger cannot be written"});
}

TEST_CASE("faults: the worse of two is the one with the higher exit code, the first on a tie", "[fault]") {
    CHECK(worse(Fault::kNone, Fault::kTopUp) == Fault::kTopUp);
    CHECK(worse(Fault::kTopUp, Fault::kConfig) == Fault::kConfig);
    CHECK(worse(Fault::kConfig, Fault::kTopUp) == Fault::kConfig);
    CHECK(worse(Fault::kLimit, Fault::kTopUp) == Fault::kLimit);
    CHECK(worse(Fault::kNone, Fault::kNone) == Fault::kNone);
}

TEST_CASE("problems: Expected<T> holds a value or the Problem; value() on a Problem throws it as a RoundError", "[fault]") {
    const Expected<int> good = 7;
    const Expected<int> bad = Problem{Fault::kFees, "no fees"};
    CHECK(good.value() == 7);
    REQUIRE(bad.has_error());
    CHECK(bad.error().fault == Fault::kFees);
    try {
        (void)bad.value();
        FAIL("no exception");
    } catch (const RoundError& e) {
        CHECK(e.fault() == Fault::kFees);
        CHECK(std::string(e.what()) == "no fees");
    }
}

TEST_CASE("problems: fault_of takes a RoundError's own Fault, any other exception gets the caller's", "[fault]") {
    const Expected<int> bad = Problem{Fault::kSender, "another process sends"};
    try {
        (void)bad.value();
        FAIL("no exception");
    } catch (const std::exception& e) {
        CHECK(fault_of(e, Fault::kLedger) == Fault::kSender);
    }
    CHECK(fault_of(std::runtime_error("disk full"), Fault::kLedger) == Fault::kLedger);
    CHECK(fault_of(RoundError(Fault::kFees, "no fees"), Fault::kInternal) == Fault::kFees);
}

TEST_CASE("problems: problem_of says what the step was doing, with the exception's Fault", "[fault]") {
    CHECK(problem_of(std::runtime_error("disk full"), Fault::kLedger, "ledger cannot be written") ==
          Problem{Fault::kLedger, "ledger cannot be written: disk full"});
    CHECK(problem_of(RoundError(Fault::kSender, "held by b"), Fault::kLedger, "cannot claim the sender lease s") ==
          Problem{Fault::kSender, "cannot claim the sender lease s: held by b"});
}
