#pragma once

#include <ostream>
#include <string>
#include <utility>

namespace keymaster {

//! A value that must never be printed: private keys, API keys, URLs that carry credentials.
//! Streams and formats as "***"; the value is only reachable through reveal().
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    Secret(const Secret&) = default;
    Secret& operator=(const Secret&) = default;
    Secret(Secret&&) noexcept = default;
    Secret& operator=(Secret&&) noexcept = default;
    ~Secret() { wipe(); }

    //! The secret itself; keep the result out of logs, errors, metrics and /status.
    const std::string& reveal() const { return value_; }
    bool empty() const { return value_.empty(); }

    friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "***"; }

private:
    void wipe() {
        volatile char* p = value_.data();
        for (std::size_t i = 0; i < value_.size(); ++i) p[i] = 0;
    }
    std::string value_;
};

}  // namespace keymaster
