// The real client address behind trusted proxies: see real_ip.hpp.
#include "real_ip.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <stdexcept>

namespace userkey::lb::engine {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Splits `s` at `sep` outside double quotes (a quoted-string may hold one).
template <class F>
void split_outside_quotes(std::string_view s, char sep, F&& each) {
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == sep && !quoted) {
      each(s.substr(start, i - start));
      start = i + 1;
    }
  }
  each(s.substr(start));
}

// Splits `s` at every comma: X-Forwarded-For has no quoting.
template <class F>
void split_commas(std::string_view s, F&& each) {
  for (std::size_t start = 0;;) {
    const auto comma = s.find(',', start);
    if (comma == std::string_view::npos) {
      each(s.substr(start));
      return;
    }
    each(s.substr(start, comma - start));
    start = comma + 1;
  }
}

// An address with its :port, and the [brackets] around IPv6, taken off.
std::optional<IpAddress> address_with_port(std::string_view node) {
  if (!node.empty() && node.front() == '[') {
    const auto close = node.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view after = node.substr(close + 1);
    if (!after.empty() && !(after.front() == ':' && all_digits(after.substr(1)))) return std::nullopt;
    const std::string_view inside = node.substr(1, close - 1);
    if (inside.find(':') == std::string_view::npos) return std::nullopt;  // brackets hold IPv6 only
    return IpAddress::parse(inside);
  }
  const auto colons = std::count(node.begin(), node.end(), ':');
  if (colons == 1) {
    // IPv4 with a port.
    const auto colon = node.find(':');
    if (!all_digits(node.substr(colon + 1))) return std::nullopt;
    node = node.substr(0, colon);
    if (node.find('.') == std::string_view::npos) return std::nullopt;
  }
  return IpAddress::parse(node);  // IPv4, or bare IPv6
}

}  // namespace

void forwarded_for_values(std::string_view field_value, const std::function<void(std::string_view)>& each) {
  split_outside_quotes(field_value, ',', [&](std::string_view element) {
    std::string_view node;
    split_outside_quotes(element, ';', [&](std::string_view pair) {
      pair = trim(pair);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos) return;
      const std::string_view name = trim(pair.substr(0, eq));
      if (boost::beast::iequals(boost::beast::string_view(name.data(), name.size()), "for"))
        node = trim(pair.substr(eq + 1));
    });
    each(node);
  });
}

std::optional<IpAddress> forwarded_for_address(std::string_view entry) {
  entry = trim(entry);
  if (entry.find('"') != std::string_view::npos) return std::nullopt;
  return address_with_port(entry);
}

std::optional<IpAddress> forwarded_node_address(std::string_view node) {
  node = trim(node);
  if (node.size() >= 2 && node.front() == '"' && node.back() == '"') {
    node = node.substr(1, node.size() - 2);
    // (An address needs no quoted-pair: a value with one is not an address.)
    if (node.find_first_of("\\\"") != std::string_view::npos) return std::nullopt;
  } else if (node.find('"') != std::string_view::npos) {
    return std::nullopt;
  }
  return address_with_port(node);
}

TrustedProxies::TrustedProxies(std::span<const std::string> cidrs, RealIpHeader header) : header_(header) {
  for (const auto& text : cidrs) {
    std::string err;
    auto c = Cidr::parse(text, &err);
    if (!c) throw std::invalid_argument("bad trusted proxy: " + err);
    blocks_.push_back(*c);
  }
}

bool TrustedProxies::trusted(const IpAddress& ip) const {
  return std::any_of(blocks_.begin(), blocks_.end(), [&](const Cidr& c) { return c.contains(ip); });
}

bool TrustedProxies::trusted(std::string_view ip) const {
  if (blocks_.empty()) return false;
  const auto parsed = IpAddress::parse(ip);
  return parsed && trusted(*parsed);
}

namespace {

// Right to left over `nodes`, from a trusted peer: the first untrusted
// address; all trusted: the leftmost; a bad entry: the last good address.
std::optional<IpAddress> walk(const TrustedProxies& trusted, const std::vector<std::string_view>& nodes,
                               RealIpHeader kind) {
  std::optional<IpAddress> client;
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const auto ip = kind == RealIpHeader::forwarded ? forwarded_node_address(*it) : forwarded_for_address(*it);
    if (!ip) break;
    client = ip;
    if (!trusted.trusted(*ip)) break;
  }
  return client;
}

}  // namespace

void TrustedProxies::resolve(std::string_view peer, const boost::beast::http::fields& headers,
                             std::string& out) const {
  out.assign(peer);
  if (!trusted(peer)) return;
  std::vector<std::string_view> nodes;
  const bool forwarded = header_ == RealIpHeader::forwarded;
  const boost::beast::string_view name = forwarded ? "Forwarded" : "X-Forwarded-For";
  for (const auto& f : headers) {
    if (f.value().empty() || !boost::beast::iequals(f.name_string(), name)) continue;
    const std::string_view value(f.value().data(), f.value().size());
    if (forwarded)
      forwarded_for_values(value, [&](std::string_view node) { nodes.push_back(node); });
    else
      split_commas(value, [&](std::string_view entry) { nodes.push_back(entry); });
  }
  if (const auto client = walk(*this, nodes, header_)) out = client->to_string();
}

void TrustedProxies::resolve_forwarded_for(std::string_view peer, std::string_view list, std::string& out) const {
  out.assign(peer);
  if (!trusted(peer)) return;
  std::vector<std::string_view> nodes;
  split_commas(list, [&](std::string_view entry) { nodes.push_back(entry); });
  if (const auto client = walk(*this, nodes, RealIpHeader::x_forwarded_for)) out = client->to_string();
}

}  // namespace userkey::lb::engine
