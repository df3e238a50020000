#include "keymaster/signer/signer.hpp"

namespace keymaster::signer {

LocalSigner::LocalSigner(crypto::PrivateKey key)
    : key_(std::move(key)), address_(eth::Address::from_public_key(key_.public_key())) {}

boost::asio::awaitable<Result<crypto::RecoverableSignature>> LocalSigner::sign(const Hash32& digest) {
    co_return key_.sign(digest);
}

}  // namespace keymaster::signer
