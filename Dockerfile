# keymaster container: build on Debian 12, run on Debian 12 slim as a non-root user with only the
# binary and its runtime libraries (tests/deploy/docker_test.sh checks the list against the binary).
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake ninja-build pkg-config git ca-certificates \
      libboost1.81-dev prometheus-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libsecp256k1-dev \
      catch2 libcli11-dev libsqlite3-dev libssl-dev libcrypto++-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY src src
COPY tests tests
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKEYMASTER_TESTS=OFF \
 && cmake --build build -j2 --target keymaster \
 && strip build/keymaster

FROM debian:12-slim
# (libpq5 is not linked: keymaster loads it with dlopen when --ledger is a Postgres URI; it stays in the list.)
# runtime-packages: ca-certificates libssl3 libprometheus-cpp-core1.0 libspdlog1.10 libfmt9 libsecp256k1-1 libsqlite3-0 libpq5 libcom-err2 libffi8 libgmp10 libgnutls30 libgssapi-krb5-2 libhogweed6 libidn2-0 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libldap-2.5-0 libnettle8 libp11-kit0 libsasl2-2 libtasn1-6 libunistring2
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libssl3 libprometheus-cpp-core1.0 libspdlog1.10 libfmt9 libsecp256k1-1 libsqlite3-0 \
      libpq5 libcom-err2 libffi8 libgmp10 libgnutls30 libgssapi-krb5-2 libhogweed6 libidn2-0 libk5crypto3 libkeyutils1 \
      libkrb5-3 libkrb5support0 libldap-2.5-0 libnettle8 libp11-kit0 libsasl2-2 libtasn1-6 libunistring2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/keymaster /usr/local/bin/keymaster
USER 65532:65532
WORKDIR /var/lib/keymaster
ENV STATE_DIRECTORY=/var/lib/keymaster
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/keymaster"]
CMD ["run", "--config", "/etc/keymaster/keymaster.json", "--log-format", "json"]
