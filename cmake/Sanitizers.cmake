# USERKEY_SANITIZE=address,undefined or thread: the whole tree (library, apps,
# tests) built with those sanitizers, so end-to-end tests run sanitized
# processes too. Used by the asan and tsan presets (make test-sanitizers).
if(USERKEY_SANITIZE)
  # A finding fails the process, and so the test that started it.
  add_compile_options(-fsanitize=${USERKEY_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${USERKEY_SANITIZE})
  message(STATUS "userkey: building with -fsanitize=${USERKEY_SANITIZE}")
  if(USERKEY_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 warns (-Wtsan, an error under -Werror) that TSan does not model
    # std::atomic_thread_fence, which Asio's fenced_block and atomic_count use
    # around handler invocation. Every hand-off between our threads also goes
    # through a mutex or an atomic operation TSan does see (Asio's scheduler
    # queue, our own state), so the unmodelled fence can only hide an ordering,
    # never invent a race; the warning is silenced, not any TSan report.
    add_compile_options(-Wno-tsan)
  endif()
endif()

# The spdlog the library links. Debian's libspdlog.so is not built with TSan,
# so the reference counts its writer thread drops inside it are invisible to
# TSan, which then reports the logger's destruction as racing with the last
# line written. Under TSan spdlog is compiled into our code instead
# (spdlog::spdlog_header_only), where every access is instrumented.
set(USERKEY_SPDLOG_TARGET spdlog::spdlog)
if(USERKEY_SANITIZE MATCHES "thread")
  set(USERKEY_SPDLOG_TARGET spdlog::spdlog_header_only)
endif()
