// userkey-admin: the native replacement for the seed's manual mongorestore,
// mongo-shell and mongo-express steps.
//   restore DUMP   upsert every user of a mongodump (idempotent) + index
//   put ID KEY     insert or replace one user
//   get ID         print one user's key
//   list           print every user
#include <CLI/CLI.hpp>

#include <iostream>

#include <userkey/backend/bson_file_repository.hpp>
#include <userkey/core/config_values.hpp>
#include <userkey/backend/mongo_repository.hpp>
#include <userkey/core/user_id.hpp>

namespace {

int fail(const std::string& msg, int code = 1) {
  std::cerr << "userkey-admin: " << msg << "\n";
  return code;
}

int report(const userkey::StoreStatus& r) {
  if (r.code == userkey::StoreStatus::Code::unauthorized) return fail("the database refused the credentials");
  return fail(r.detail.empty() ? std::string(userkey::to_string(r.code)) : r.detail);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"userkey-admin: restore a dump into MongoDB and read or write user keys."};
  app.require_subcommand(1);
  userkey::MongoConfig cfg;
  bool uri_given = false;
  std::string timeout = "2s";
  auto* uri = app.add_option("--mongo-uri", cfg.uri, "MongoDB URI; credentials from mongo_user / mongo_pass when it has none")
                  ->envname("USERKEY_MONGO_URI")->capture_default_str();
  app.add_option("--db", cfg.database, "Database")->envname("USERKEY_DB")->capture_default_str();
  app.add_option("--collection", cfg.collection, "Collection")->envname("USERKEY_COLLECTION")->capture_default_str();
  app.add_option("--mongo-timeout", timeout, "Server-selection and socket timeout")->envname("USERKEY_MONGO_TIMEOUT")
      ->check(CLI::Validator([](std::string& v) {
        std::string err;
        return userkey::parse_duration(v, &err) ? std::string() : err;
      }, "DURATION"))->capture_default_str();

  std::string dump_dir;
  auto* restore = app.add_subcommand("restore", "Upsert every user of a mongodump (directory or .bson file) and create the user_id index; safe to run again");
  restore->add_option("DUMP", dump_dir, "mongodump root (holding myusers/users.bson), database directory or .bson file")->required();

  std::string put_id, put_key;
  auto* put = app.add_subcommand("put", "Insert or replace one user");
  put->add_option("ID", put_id, "user id (0..2147483647)")->required();
  put->add_option("KEY", put_key, "the user's key")->required();

  std::string get_id;
  auto* get = app.add_subcommand("get", "Print one user's key");
  get->add_option("ID", get_id, "user id")->required();

  auto* list = app.add_subcommand("list", "Print every user as ID<TAB>KEY");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  uri_given = uri->count() > 0;
  cfg.server_selection_timeout = cfg.socket_timeout = *userkey::parse_duration(timeout);
  cfg.app_name = "userkey-admin";
  cfg = userkey::mongo_config_from_env(cfg, uri_given);

  auto parse_id = [](const std::string& s) -> std::optional<userkey::UserId> {
    userkey::UserIdError e;
    auto id = userkey::parse_user_id(s, &e);
    if (!id) std::cerr << "userkey-admin: " << e.message << "\n";
    return id;
  };

  try {
    userkey::MongoRepository repo(cfg);
    if (*restore) {
      auto records = userkey::read_bson_dump(userkey::resolve_dump_file(dump_dir, cfg.database, cfg.collection));
      for (const auto& r : records) {
        if (auto res = repo.upsert(r); !res.ok()) return report(res);
      }
      if (auto res = repo.ensure_index(); !res.ok()) return report(res);
      std::cout << "restored " << records.size() << " users into " << cfg.database << "." << cfg.collection << "\n";
      return 0;
    }
    if (*put) {
      auto id = parse_id(put_id);
      if (!id) return 2;
      if (auto res = repo.upsert({*id, put_key}); !res.ok()) return report(res);
      return 0;
    }
    if (*get) {
      auto id = parse_id(get_id);
      if (!id) return 2;
      auto res = repo.find_key(*id);
      if (res.status == userkey::LookupStatus::not_found) return fail("no user " + std::to_string(*id), 3);
      if (!res.ok()) return report(userkey::StoreStatus(res));
      std::cout << res.key << "\n";
      return 0;
    }
    if (*list) {
      userkey::StoreStatus status;
      auto users = repo.list(&status);
      if (!status.ok()) return report(status);
      for (const auto& u : users) std::cout << u.user_id << "\t" << u.user_key << "\n";
      return 0;
    }
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
