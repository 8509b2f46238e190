# Sources of the pure load-balancing pieces (namespace userkey::lb).
# Include from lib/CMakeLists.txt and add ${USERKEY_LB_SOURCES} to the library.
# The policies include the internal lib/lb/hash.hpp by relative path, so no
# extra include directory is needed beyond the public include/.
set(USERKEY_LB_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/upstream.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policy_registry.cpp
  ${CMAKE_CURRENT_LIST_DIR}/token_bucket.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ip_filter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hash_key.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proxy_config_loader.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proxy_settings.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policies/round_robin.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policies/weighted_round_robin.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policies/least_connections.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policies/random.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policies/power_of_two.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policies/ip_hash.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policies/consistent_hash.cpp
)
