# userkey_warnings(target): the project's warning set, errors with USERKEY_WERROR.
# Under sanitizers GCC 12 raises false -Wmaybe-uninitialized (Beast's parser
# optionals) and -Wmismatched-new-delete (Asio's coroutine frames) errors in
# code that builds clean without them: those two stay off there.
function(userkey_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                         $<$<BOOL:${USERKEY_WERROR}>:-Werror>)
  if(USERKEY_SANITIZE)
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-mismatched-new-delete)
  endif()
endfunction()
