#include "keymaster/crypto/keccak.hpp"

#include <cryptopp/keccak.h>

namespace keymaster::crypto {

struct Keccak256::Impl {
    CryptoPP::Keccak_256 hash;
};

Keccak256::Keccak256() : impl_(new Impl) {}
Keccak256::~Keccak256() { delete impl_; }

void Keccak256::update(ByteView data) { impl_->hash.Update(data.data(), data.size()); }

Hash32 Keccak256::finish() {
    Hash32 out{};
    impl_->hash.Final(out.data());
    return out;
}

Hash32 keccak256(ByteView data) {
    Keccak256 k;
    k.update(data);
    return k.finish();
}

Hash32 keccak256(std::string_view data) {
    return keccak256(ByteView(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

}  // namespace keymaster::crypto
