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

// The `for=` values of Forwarded fields (RFC 7239), in order; an element
// without one is an empty node (which stops the walk there).
void forwarded_for_nodes(const boost::beast::http::fields& headers, std::vector<std::string_view>& nodes) {
  for (const auto& f : headers) {
    if (!boost::beast::iequals(f.name_string(), "Forwarded")) continue;
    const std::string_view value(f.value().data(), f.value().size());
    split_outside_quotes(value, ',', [&](std::string_view element) {
      std::string_view node;
      split_outside_quotes(element, ';', [&](std::string_view pair) {
        pair = trim(pair);
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos) return;
        const std::string_view name = trim(pair.substr(0, eq));
        if (boost::beast::iequals(boost::beast::string_view(name.data(), name.size()), "for"))
          node = trim(pair.substr(eq + 1));
      });
      nodes.push_back(node);
    });
  }
}

}  // namespace

std::optional<IpAddress> forwarded_node_address(std::string_view node) {
  node = trim(node);
  if (node.size() >= 2 && node.front() == '"' && node.back() == '"') node = node.substr(1, node.size() - 2);
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

TrustedProxies::TrustedProxies(std::span<const std::string> cidrs) {
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
std::optional<IpAddress> walk(const TrustedProxies& trusted, const std::vector<std::string_view>& nodes) {
  std::optional<IpAddress> client;
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const auto ip = forwarded_node_address(*it);
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
  for (const auto& f : headers) {
    if (f.value().empty() || !boost::beast::iequals(f.name_string(), "X-Forwarded-For")) continue;
    split_outside_quotes(std::string_view(f.value().data(), f.value().size()), ',',
                         [&](std::string_view node) { nodes.push_back(node); });
  }
  if (nodes.empty()) forwarded_for_nodes(headers, nodes);
  if (const auto client = walk(*this, nodes)) out = client->to_string();
}

void TrustedProxies::resolve_forwarded_for(std::string_view peer, std::string_view list, std::string& out) const {
  out.assign(peer);
  if (!trusted(peer)) return;
  std::vector<std::string_view> nodes;
  split_outside_quotes(list, ',', [&](std::string_view node) { nodes.push_back(node); });
  if (const auto client = walk(*this, nodes)) out = client->to_string();
}

}  // namespace userkey::lb::engine
