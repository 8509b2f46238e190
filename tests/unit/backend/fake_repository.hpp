// A scripted in-memory repository for unit tests of the cache and router.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>
#include <map>
#include <mutex>
#include <stdexcept>

#include <userkey/backend/user_repository.hpp>

namespace userkey::test {

class FakeRepository final : public UserRepository {
public:
  std::map<UserId, std::string> keys;
  std::atomic<LookupStatus> fail_with{LookupStatus::found};  // found = behave normally
  std::atomic<int> calls{0};
  std::chrono::milliseconds delay{0};  ///< how long each lookup takes
  std::atomic<bool> throws{false};     ///< lookups and ready() throw (after the delay)

  LookupResult find_key(UserId id) override {
    ++calls;
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    if (throws) throw std::runtime_error("scripted exception");
    if (fail_with != LookupStatus::found) return LookupResult::error(fail_with, "scripted failure");
    std::lock_guard lock(mu_);
    auto it = keys.find(id);
    return it == keys.end() ? LookupResult::not_found() : LookupResult::found(it->second);
  }
  ReadyResult ready() override {
    if (throws) throw std::runtime_error("scripted exception");
    if (fail_with != LookupStatus::found) return StoreStatus(LookupResult::error(fail_with, "scripted failure"));
    return StoreStatus::success();
  }
  std::string describe() const override { return "fake"; }
  void put(UserId id, std::string key) {
    std::lock_guard lock(mu_);
    keys[id] = std::move(key);
  }

private:
  std::mutex mu_;
};

}  // namespace userkey::test
