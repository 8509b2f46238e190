// What a new client costs the lb's rate limiter once its table is full.
//
// Fills a RateLimiter (default bound: kDefaultMaxClients = 100,000 clients)
// with live clients (each has just sent a request, none is idle), then sends
// one request from each of `--keys` new clients, every one from a /64 of its
// own (an attacker rotating IPv6 networks, or many IPv4 addresses): each is a
// new key in a full shard. Times them in batches and prints the median and
// the slowest batch's ns per new key.
//
// It uses RateLimiter's public interface only, so bench/client-table.sh can
// build it against an older tree as well and compare the two in one run.
//
//   client-table [--keys N] [--batch N] [--clients N]
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "userkey/lb/token_bucket.hpp"

namespace lb = userkey::lb;
using Clock = std::chrono::steady_clock;

namespace {

std::size_t arg(int argc, char** argv, const char* name, std::size_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10));
  return fallback;
}

// A distinct address for client `i`: an IPv4 address while filling, an
// address in a /64 of its own for the new clients.
std::string v4(std::size_t i) {
  return "10." + std::to_string((i >> 16) & 0xff) + "." + std::to_string((i >> 8) & 0xff) + "." +
         std::to_string(i & 0xff);
}
std::string v6(std::size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "2001:db8:%zx:%zx::1", (i >> 16) & 0xffff, i & 0xffff);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t clients = arg(argc, argv, "--clients", lb::kDefaultMaxClients);
  const std::size_t keys = arg(argc, argv, "--keys", 20'000);
  const std::size_t batch = std::max<std::size_t>(1, arg(argc, argv, "--batch", 100));

  // 10 requests/s, burst 20, idle TTL 60 s: nobody below is idle, so no
  // bucket is expendable and every new key needs an eviction.
  lb::RateLimiter rl(10.0, 20.0, std::chrono::seconds(60), 64, clients);
  auto now = lb::TimePoint{} + std::chrono::hours(1);
  const auto tick = std::chrono::microseconds(1);

  // Fill until every shard is at its bound (shards fill unevenly, so it takes
  // a few more clients than the bound).
  std::size_t filled = 0;
  while (rl.size() < clients && filled < 4 * clients) {
    for (int i = 0; i < 256; ++i, ++filled) {
      rl.try_acquire(v4(filled), now);
      now += tick;
    }
  }

  std::vector<std::string> fresh;
  fresh.reserve(keys);
  for (std::size_t i = 0; i < keys; ++i) fresh.push_back(v6(i));

  std::vector<double> ns_per_key;
  for (std::size_t start = 0; start + batch <= keys; start += batch) {
    const auto t0 = Clock::now();
    for (std::size_t i = start; i < start + batch; ++i) {
      rl.try_acquire(fresh[i], now);
      now += tick;
    }
    const auto t1 = Clock::now();
    ns_per_key.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(batch));
  }
  if (ns_per_key.empty()) {
    std::fprintf(stderr, "client-table: --keys must be at least --batch\n");
    return 2;
  }
  std::sort(ns_per_key.begin(), ns_per_key.end());
  const double median = ns_per_key[ns_per_key.size() / 2];
  std::printf("median %.0f ns per new key, slowest batch %.0f ns (%zu batches of %zu new keys; %zu clients filled, %zu tracked at the end)\n",
              median, ns_per_key.back(), ns_per_key.size(), batch, filled, rl.size());
  const std::size_t shards = 16;  // ClientTable's kShards: its bound is rounded up to a multiple of it
  return rl.size() <= (clients + shards - 1) / shards * shards ? 0 : 1;
}
