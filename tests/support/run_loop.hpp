// Test support: run an Asio loop until a condition holds, for unit tests of
// the lb engine's parts on a real io_context. The bound only keeps a broken
// part from hanging the test (it then fails); nothing asserts a speed.
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>

namespace userkey::test {

inline void run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds bound = std::chrono::seconds(10)) {
  const auto give_up = std::chrono::steady_clock::now() + bound;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < give_up) io.run_one_for(std::chrono::milliseconds(100));
  REQUIRE(done());
}

}  // namespace userkey::test
