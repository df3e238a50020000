#include "keymaster/config/secrets.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace keymaster::config {
namespace {

Problem bad(std::string why) { return Problem{Fault::kConfig, std::move(why)}; }

Expected<crypto::PrivateKey> from_secret(const Secret& s, const std::string& where) {
    auto key = crypto::PrivateKey::from_hex(s);
    if (!key) return bad(where + ": not a valid secp256k1 private key (expected 32 bytes of hex)");
    return *key;
}

}  // namespace

Expected<crypto::PrivateKey> read_key_env(const std::string& var, const EnvLookup& env) {
    auto v = env(var);
    if (!v || v->empty()) return bad("environment variable " + var + " is not set");
    return from_secret(Secret(std::move(*v)), "environment variable " + var);
}

Expected<crypto::PrivateKey> read_key_file(const std::string& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return bad("key file " + file + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return bad("key file " + file + ": not a regular file");
    // Group access is allowed only for keymaster's own group: Kubernetes mounts Secrets root-owned
    // and readable through the pod's fsGroup.
    if ((st.st_mode & S_IRWXO) != 0 || ((st.st_mode & S_IRWXG) != 0 && st.st_gid != ::getegid()))
        return bad("key file " + file + ": readable by group or others (chmod 600 it)");
    std::ifstream in(file, std::ios::binary);
    if (!in) return bad("key file " + file + ": " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    Secret s(ss.str());
    return from_secret(s, "key file " + file);
}

Expected<crypto::PrivateKey> resolve_bank_key(const BankRef& bank, const EnvLookup& env) {
    Expected<crypto::PrivateKey> r = bad("unreachable");
    switch (bank.kind) {
        case BankRef::Kind::kInline: r = from_secret(bank.inline_key, "inline key"); break;
        case BankRef::Kind::kEnv: r = read_key_env(bank.env_var, env); break;
        case BankRef::Kind::kFile: r = read_key_file(bank.file); break;
        case BankRef::Kind::kKms: r = bad("a KMS key signs in KMS: there is no key to read"); break;
    }
    if (!r) return bad(bank.path + ": " + r.error().message);
    return r;
}

}  // namespace keymaster::config
