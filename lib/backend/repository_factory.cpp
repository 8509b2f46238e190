#include "userkey/backend/repository_factory.hpp"

#include "userkey/backend/bson_file_repository.hpp"

namespace userkey {

std::shared_ptr<UserRepository> make_repository(const RepositoryOptions& opts) {
  std::shared_ptr<UserRepository> repo;
  if (opts.mongo) repo = std::make_shared<MongoRepository>(*opts.mongo);
  else repo = std::make_shared<BsonFileRepository>(opts.dump);
  // The dump is already an in-memory map: a cache in front would only add work.
  if (opts.mongo && opts.cache.capacity > 0 && opts.cache.ttl.count() > 0)
    repo = std::make_shared<CachingRepository>(std::move(repo), opts.cache);
  return repo;
}

}  // namespace userkey
