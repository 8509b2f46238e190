# userkey_warnings(target): the project's warning set, errors with USERKEY_WERROR.
function(userkey_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                         $<$<BOOL:${USERKEY_WERROR}>:-Werror>)
endfunction()
