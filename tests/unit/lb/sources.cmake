# doctest unit tests for userkey::lb. No main(): the unit-test runner provides
# DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN in its own translation unit.
set(USERKEY_LB_TEST_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/test_policies.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_health.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_token_bucket.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_ip_filter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_hash_key.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_proxy_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_proxy_settings.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_http1_codec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_http1_wire.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_upstream_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_admission.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_outlier.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_client_table.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_listener.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_upstream_router.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_upstream_exchange.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_request_id.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_access_log.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_proxy_protocol.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_real_ip.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_admin_server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_tls_ticket_keys.cpp
)
