#include "keymaster/common/clock.hpp"

namespace keymaster {
namespace {

class SystemClock final : public Clock {
public:
    double wall() const override {
        return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    }
    std::chrono::steady_clock::time_point steady() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace

const Clock& system_clock() {
    static const SystemClock clock;
    return clock;
}

}  // namespace keymaster
