# USERKEY_SANITIZE=address,undefined or thread: the whole tree (library, apps,
# tests) built with those sanitizers, so end-to-end tests run sanitized
# processes too. Used by the asan and tsan presets (make test-sanitizers).
if(USERKEY_SANITIZE)
  add_compile_options(-fsanitize=${USERKEY_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${USERKEY_SANITIZE})
  # A finding fails the process, and so the test that started it.
  message(STATUS "userkey: building with -fsanitize=${USERKEY_SANITIZE}")
endif()
