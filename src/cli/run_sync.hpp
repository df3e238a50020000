#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>
#include <vector>

namespace keymaster::cli {

//! A one-off command's only event loop: runs the coroutines at once on the command's io_context
//! (with whatever else is spawned there) until every one has finished; their results in the
//! tasks' order. The first exception (in that order) is rethrown after all have finished.
template <typename T>
std::vector<T> run_all(boost::asio::io_context& io, std::vector<boost::asio::awaitable<T>> tasks) {
    std::vector<std::optional<T>> slots(tasks.size());
    std::vector<std::exception_ptr> errors(tasks.size());
    std::size_t left = tasks.size();
    for (std::size_t i = 0; i < tasks.size(); ++i)
        boost::asio::co_spawn(io, std::move(tasks[i]), [&, i](std::exception_ptr e, T v) {
            if (e) errors[i] = e;
            else slots[i] = std::move(v);
            --left;
        });
    io.restart();
    while (left > 0 && io.run_one() > 0) {
    }
    std::vector<T> out;
    out.reserve(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i) {
        if (errors[i]) std::rethrow_exception(errors[i]);
        out.push_back(std::move(*slots[i]));
    }
    return out;
}

//! One coroutine to completion on the command's io_context (run_all of one).
template <typename T>
T run_on(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
    std::vector<boost::asio::awaitable<T>> one;
    one.push_back(std::move(task));
    return std::move(run_all(io, std::move(one)).front());
}

//! The same on a fresh io_context, for a command whose only asynchronous work is this one call
//! (validate's loading).
template <typename T>
T run_sync(boost::asio::awaitable<T> task) {
    boost::asio::io_context io;
    return run_on(io, std::move(task));
}

}  // namespace keymaster::cli
