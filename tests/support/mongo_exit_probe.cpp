// Test helper: uses a MongoRepository the way an embedding program would --
// without the apps' MONGOC_DISABLE_SHM -- then returns from main. The e2e
// test checks that the driver's /dev/shm/mongoc-<pid> segment is gone after.
// Usage: mongo_exit_probe URI USER_ID; prints the key (or the status).
#include <iostream>
#include <string>

#include <userkey/backend/mongo_repository.hpp>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: mongo_exit_probe URI USER_ID\n";
    return 2;
  }
  userkey::MongoConfig cfg;
  cfg.uri = argv[1];
  cfg = userkey::mongo_config_from_env(cfg, true);
  userkey::MongoRepository repo(cfg);
  const auto r = repo.find_key(std::stoll(argv[2]));
  std::cout << (r.ok() ? r.key : std::string("error")) << "\n";
  return r.ok() ? 0 : 1;
}
