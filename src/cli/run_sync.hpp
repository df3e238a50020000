#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>

namespace keymaster::cli {

//! Runs one coroutine to completion on the command's io_context (and whatever else is spawned
//! there until it finishes); rethrows its exception. A one-off command's only event loop.
template <typename T>
T run_on(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
        if (e) error = e;
        else out = std::move(v);
        done = true;
    });
    io.restart();
    while (!done && io.run_one() > 0) {
    }
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

//! The same on a fresh io_context, for a command whose only asynchronous work is this one call
//! (validate's loading).
template <typename T>
T run_sync(boost::asio::awaitable<T> task) {
    boost::asio::io_context io;
    return run_on(io, std::move(task));
}

}  // namespace keymaster::cli
