#include "keymaster/ledger/ledger.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "db.hpp"
#include "store.hpp"

namespace keymaster::ledger {
namespace {

using detail::Stmt;

// One keymaster per data directory (SQLite): an exclusive flock on <dir>/keymaster.lock, which
// holds the holder's pid.
void take_lock(detail::Store& store, const std::string& dir) {
    int& lock_fd = store.lock_fd;
    const std::string lock_path = dir + "/keymaster.lock";
    lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) throw LedgerError("lock " + lock_path + ": " + std::strerror(errno));
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {};
        const auto n = ::pread(lock_fd, buf, sizeof buf - 1, 0);
        std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        ::close(lock_fd);
        lock_fd = -1;
        throw LockedError("another keymaster (pid " + pid + ") is using " + dir);
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd, 0) != 0 || ::pwrite(lock_fd, pid.data(), pid.size(), 0) < 0)
        throw LedgerError("lock " + lock_path + ": " + std::strerror(errno));
}

std::unique_ptr<detail::Store> open_store(const Location& where, bool lock, const Clock& clock) {
    auto store = std::make_unique<detail::Store>();
    store->clock = &clock;
    if (where.kind == Location::Kind::kSqlite) {
        const auto dir = std::filesystem::path(where.target).parent_path().string();
        std::error_code ec;
        std::filesystem::create_directories(dir.empty() ? "." : dir, ec);
        if (ec) throw LedgerError("data dir " + dir + ": " + ec.message());
        if (lock) take_lock(*store, dir.empty() ? "." : dir);
        store->db = detail::open_sqlite(where.target);
    } else {
        store->db = detail::open_postgres(where.target);  // writers share it: the lease decides (claim_lease, fence)
        store->shared = true;
    }
    store->db->create_schema();
    // An SQLite ledger opened with its lock is this process's alone: a lease in it (a sender lease
    // of a Worker) was left by a process that is gone (killed before it released it), and would
    // keep this one from sending until it expired.
    if (!store->shared && lock) store->db->exec("DELETE FROM lease");
    if (store->shared) {
        const double before = store->clock->wall();
        Stmt s(*store->db, std::string("SELECT ") + store->db->now_sql());
        if (s.step()) store->measure_offset(s.real(0), before, store->clock->wall());
    }
    return store;
}

}  // namespace

Ledger::Ledger(const std::string& dir, bool lock, const Clock& clock)
    : Ledger(Location{Location::Kind::kSqlite, dir + "/ledger.sqlite"}, lock, clock) {}

Ledger::Ledger(const Location& where, bool lock, const Clock& clock) : Ledger(open_store(where, lock, clock)) {}

Ledger::Ledger(std::unique_ptr<detail::Store> store)
    : Journal(*store), Leases(*store), BankAudit(*store), BurnHistory(*store), Reader(*store), store_(std::move(store)) {}

Ledger::~Ledger() {
    store_->db.reset();
    if (store_->lock_fd >= 0) ::close(store_->lock_fd);  // releases the flock
}

const std::string& Ledger::path() const { return store_->db->where(); }

double Ledger::now() const { return store_->now(); }

double Ledger::clock_offset() const { return store_->offset; }

void Ledger::ping() {
    Stmt s(*store_->db, "SELECT 1");
    (void)s.step();
}

}  // namespace keymaster::ledger
