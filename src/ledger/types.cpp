#include "keymaster/ledger/types.hpp"

#include "db.hpp"

namespace keymaster::ledger {

std::string_view state_name(State s) {
    switch (s) {
        case State::kIntent: return "intent";
        case State::kSent: return "sent";
        case State::kConfirmed: return "confirmed";
        case State::kReplaced: return "replaced";
        case State::kDropped: return "dropped";
        case State::kFailed: return "failed";
    }
    return "?";
}

std::optional<State> parse_state(std::string_view s) {
    for (State st : {State::kIntent, State::kSent, State::kConfirmed, State::kReplaced, State::kDropped, State::kFailed})
        if (state_name(st) == s) return st;
    return std::nullopt;
}

std::string Location::shown() const { return kind == Kind::kSqlite ? target : detail::redact_url(target); }

Expected<Location> parse_location(const std::string& url, const std::string& data_dir) {
    if (url.empty()) return Location{Location::Kind::kSqlite, data_dir + "/ledger.sqlite"};
    if (url.rfind("sqlite:", 0) == 0 && url.size() > 7) return Location{Location::Kind::kSqlite, url.substr(7)};
    if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
        if (auto c = detail::pg_connect(url); !c) return c.error();  // a bad keymaster_timeout, named
        return Location{Location::Kind::kPostgres, url};
    }
    return Problem{Fault::kConfig, "--ledger " + detail::redact_url(url) +
                                       ": expected sqlite:PATH or a Postgres URI (postgresql://user@host:port/db)"};
}

}  // namespace keymaster::ledger
