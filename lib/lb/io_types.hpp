// The concrete Asio / Beast types the proxy engine's parts share, named once.
//
// Owns no behaviour. Everything runs on io_context executors; naming that
// concrete type (rather than the type-erased any_io_executor defaults) spares
// the request path the executor copies and virtual dispatch of type erasure,
// so every socket, timer and coroutine of the engine is spelt through these.
#pragma once

#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>

#include <chrono>

#include "http1_codec.hpp"

namespace userkey::lb::engine {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Executor = asio::io_context::executor_type;
template <class T>
using awaitable = asio::awaitable<T, Executor>;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;
using error_code = boost::system::error_code;
using Request = http1::Request;
using Response = http1::Response;

/// Completion token for `co_await op(..., nothrow(ec))`: errors land in `ec`.
inline auto nothrow(error_code& ec) { return asio::redirect_error(asio::use_awaitable_t<Executor>{}, ec); }

}  // namespace userkey::lb::engine
