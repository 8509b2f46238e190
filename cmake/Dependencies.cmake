# Every third-party dependency, found one way, used by the library, apps and
# the installed package config alike.
find_package(PkgConfig REQUIRED)
pkg_check_modules(CPPHTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)
find_package(mongoc-1.0 1.20 REQUIRED CONFIG)
find_package(bson-1.0 1.20 REQUIRED CONFIG)
find_package(spdlog REQUIRED CONFIG)
find_package(Boost 1.74 REQUIRED)          # header-only: Asio + Beast for the lb
find_package(OpenSSL 3 REQUIRED)           # the lb's TLS listener (Asio's SSL streams)
find_package(Threads REQUIRED)
find_package(CLI11 REQUIRED CONFIG)        # header-only: the library's CommandLine (not needed by users)
