#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>

namespace keymaster::cli {

//! Runs one coroutine to completion on a private io_context (for commands' one-off AWS calls);
//! rethrows its exception.
template <typename T>
T run_sync(boost::asio::awaitable<T> task) {
    boost::asio::io_context io;
    std::optional<T> out;
    std::exception_ptr error;
    boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
        if (e) error = e;
        else out = std::move(v);
    });
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

}  // namespace keymaster::cli
