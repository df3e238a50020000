#include "keymaster/signer/signer.hpp"

namespace keymaster::signer {

LocalSigner::LocalSigner(crypto::PrivateKey key)
    : key_(std::move(key)), address_(eth::Address::from_public_key(key_.public_key())) {}

boost::asio::awaitable<SignResult> LocalSigner::sign(const Hash32& digest) {
    auto sig = key_.sign(digest);
    if (!sig) co_return sign_failure(sig.error().message());
    co_return SignResult(*sig);
}

}  // namespace keymaster::signer
