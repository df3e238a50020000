#include "keymaster/config/secrets.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace keymaster::config {
namespace {

std::variant<crypto::PrivateKey, std::string> from_secret(const Secret& s, const std::string& where) {
    auto key = crypto::PrivateKey::from_hex(s);
    if (!key) return where + ": not a valid secp256k1 private key (expected 32 bytes of hex)";
    return *key;
}

}  // namespace

std::variant<crypto::PrivateKey, std::string> read_key_env(const std::string& var, const EnvLookup& env) {
    auto v = env(var);
    if (!v || v->empty()) return "environment variable " + var + " is not set";
    return from_secret(Secret(std::move(*v)), "environment variable " + var);
}

std::variant<crypto::PrivateKey, std::string> read_key_file(const std::string& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return "key file " + file + ": " + std::strerror(errno);
    if (!S_ISREG(st.st_mode)) return "key file " + file + ": not a regular file";
    // Group access is allowed only for keymaster's own group: Kubernetes mounts Secrets root-owned
    // and readable through the pod's fsGroup.
    if ((st.st_mode & S_IRWXO) != 0 || ((st.st_mode & S_IRWXG) != 0 && st.st_gid != ::getegid()))
        return "key file " + file + ": readable by group or others (chmod 600 it)";
    std::ifstream in(file, std::ios::binary);
    if (!in) return "key file " + file + ": " + std::strerror(errno);
    std::stringstream ss;
    ss << in.rdbuf();
    Secret s(ss.str());
    return from_secret(s, "key file " + file);
}

std::variant<crypto::PrivateKey, std::string> resolve_bank_key(const BankRef& bank, const EnvLookup& env) {
    std::variant<crypto::PrivateKey, std::string> r = std::string("unreachable");
    switch (bank.kind) {
        case BankRef::Kind::kInline: r = from_secret(bank.inline_key, "inline key"); break;
        case BankRef::Kind::kEnv: r = read_key_env(bank.env_var, env); break;
        case BankRef::Kind::kFile: r = read_key_file(bank.file); break;
        case BankRef::Kind::kKms: r = std::string("a KMS key signs in KMS: there is no key to read"); break;
    }
    if (auto* msg = std::get_if<std::string>(&r)) return bank.path + ": " + *msg;
    return r;
}

}  // namespace keymaster::config
