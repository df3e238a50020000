#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <stdexcept>

namespace keymaster::test {

//! Runs a coroutine to completion on `io` (and whatever else is spawned there); rethrows its exception.
template <typename T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task,
      std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto fut = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
    io.restart();
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        if (io.run_one_for(limit) == 0) throw std::runtime_error("test coroutine did not finish in time");
    }
    return fut.get();
}

}  // namespace keymaster::test
