# USERKEY_SANITIZE=address,undefined or thread: the whole tree (library, apps,
# tests) built with those sanitizers, so end-to-end tests run sanitized
# processes too. Used by the asan and tsan presets (make test-sanitizers).
if(USERKEY_SANITIZE)
  add_compile_options(-fsanitize=${USERKEY_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${USERKEY_SANITIZE})
  # GCC 12's flow analysis sees the sanitizers' instrumentation and then warns
  # where the plain build does not: -Wmaybe-uninitialized inside Beast's
  # parser (boost::optional in basic_parser) and -Wmismatched-new-delete on
  # Asio 1.74's awaitable frames (its sized operator new/delete pair). Both
  # are in Boost headers, not in this project's code; the default build keeps
  # both warnings as errors.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-maybe-uninitialized -Wno-mismatched-new-delete)
  endif()
  # A finding fails the process, and so the test that started it.
  message(STATUS "userkey: building with -fsanitize=${USERKEY_SANITIZE}")
endif()
