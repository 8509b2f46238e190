// A tunnel's shared state, its idle timer and its end: see tunnel.hpp.
#include "tunnel.hpp"

namespace userkey::lb::engine {

TunnelState::TunnelState(Socket& client, Socket& upstream, std::chrono::milliseconds idle_timeout)
    : client_(client),
      upstream_(upstream),
      idle_timeout_(idle_timeout),
      last_activity_(SteadyClock::now()),
      idle_timer_(client.get_executor()),
      done_(client.get_executor(), Timer::time_point::max()) {}

void TunnelState::close(TunnelEnd why) {
  if (end_) return;
  end_ = why;
  // Shut down, not only cancelled: a cancel reaches only an operation
  // pending at that moment, and a direction may be between two; after a
  // shutdown its next read ends at once and its next write fails.
  error_code ignored;
  for (Socket* s : {&client_, &upstream_}) {
    s->shutdown(tcp::socket::shutdown_both, ignored);
    s->cancel(ignored);
  }
  idle_timer_.cancel();
}

void TunnelState::start_idle_timer() {
  touch();
  arm_idle_timer();
}

// The timer wakes when the tunnel would be idle for idle_timeout if nothing
// had moved since it was armed; when something has, it sleeps again until
// the same span after the last byte. Quiet tunnels wake it once per span,
// busy ones no more often.
void TunnelState::arm_idle_timer() {
  idle_timer_.expires_at(last_activity_ + idle_timeout_);
  idle_timer_.async_wait([self = shared_from_this()](const error_code& ec) { self->idle_timer_fired(ec); });
}

void TunnelState::idle_timer_fired(const error_code& ec) {
  if (ec || closed()) return;
  if (SteadyClock::now() - last_activity_ >= idle_timeout_)
    close(TunnelEnd::idle_timeout);
  else
    arm_idle_timer();
}

void TunnelState::direction_done() {
  if (--running_ == 0) done_.cancel();
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

awaitable<void> TunnelState::both_done() {
  while (running_ > 0) {
    error_code ignored;
    co_await done_.async_wait(nothrow(ignored));
  }
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
