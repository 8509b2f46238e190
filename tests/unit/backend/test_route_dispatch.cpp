// Unit tests for lib/backend/route_dispatch: which route a request takes.
// (Answering on the workers and the probe thread is covered end to end by
// e2e_backend and fault_backend.)
#include <doctest/doctest.h>

#include "backend/route_dispatch.hpp"

using userkey::detail::Listener;
using userkey::detail::Route;
using userkey::detail::route_of;

TEST_CASE("route_of: the listen address without an admin address") {
  CHECK(route_of("GET", "/?user_id=1", Listener::main, false) == Route::lookup);
  CHECK(route_of("HEAD", "/", Listener::main, false) == Route::lookup);
  CHECK(route_of("GET", "/readyz", Listener::main, false) == Route::readiness);
  CHECK(route_of("GET", "/metrics", Listener::main, false) == Route::metrics);
  CHECK(route_of("GET", "/healthz", Listener::main, false) == Route::on_loop);
  CHECK(route_of("GET", "/nowhere", Listener::main, false) == Route::on_loop);
  CHECK(route_of("POST", "/", Listener::main, false) == Route::on_loop);  // the router's 405
}

TEST_CASE("route_of: with an admin address, /metrics is served there only") {
  CHECK(route_of("GET", "/metrics", Listener::main, true) == Route::on_loop);  // the router's 404
  CHECK(route_of("GET", "/metrics", Listener::admin, true) == Route::metrics);
  CHECK(route_of("GET", "/healthz", Listener::admin, true) == Route::on_loop);
  CHECK(route_of("GET", "/", Listener::admin, true) == Route::admin_not_found);
  CHECK(route_of("GET", "/readyz", Listener::admin, true) == Route::readiness);
  CHECK(route_of("DELETE", "/metrics", Listener::admin, true) == Route::on_loop);
}
