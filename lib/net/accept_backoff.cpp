// Accept errors and their episodes: see accept_backoff.hpp.
#include "net/accept_backoff.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/error.hpp>

#include <cerrno>

namespace userkey::net {

namespace asio_error = boost::asio::error;

AcceptFailure classify_accept_error(const boost::system::error_code& ec, bool acceptor_open) {
  if (!acceptor_open || ec == asio_error::operation_aborted) return AcceptFailure::stop;
  if (ec == asio_error::bad_descriptor || ec == asio_error::invalid_argument || ec == asio_error::not_socket)
    return AcceptFailure::fatal;
  // A connection that died between the handshake and accept(): that one only.
  if (ec == asio_error::connection_aborted || ec == asio_error::connection_reset) return AcceptFailure::next;
  if (ec.category() == boost::system::system_category() && ec.value() == EPROTO) return AcceptFailure::next;
  // EMFILE, ENFILE, ENOBUFS, ENOMEM, and whatever else: retrying at once
  // would spin, so pause.
  return AcceptFailure::pause;
}

AcceptBackoff::AcceptBackoff(spdlog::logger* log, std::string what) : log_(log), what_(std::move(what)) {}

AcceptFailure AcceptBackoff::failed(const boost::system::error_code& ec, bool acceptor_open) {
  const AcceptFailure kind = classify_accept_error(ec, acceptor_open);
  if (kind == AcceptFailure::fatal && log_) log_->error("accepting on the {} failed: {}", what_, ec.message());
  if (kind == AcceptFailure::pause) {
    if (!backing_off_ && log_)
      log_->warn("cannot accept on the {}: {}; pausing accepts briefly until it works again", what_, ec.message());
    backing_off_ = true;
  }
  return kind;
}

void AcceptBackoff::succeeded() {
  if (backing_off_ && log_) log_->info("accepting connections on the {} again", what_);
  backing_off_ = false;
}

}  // namespace userkey::net
