# Installation and the find_package(userkey) package.
#
#   find_package(userkey CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE userkey::userkey)
#
# works the same as add_subdirectory(userkey): the aliases userkey::userkey,
# userkey::core, userkey::backend and userkey::lb name the same targets in
# both. The generated userkeyConfig.cmake finds the dependencies of the parts
# asked for (find_dependency), since the parts are static libraries whose
# users must link them too:
#
#   find_package(userkey CONFIG REQUIRED COMPONENTS lb)   # policies + proxy only
include(CMakePackageConfigHelpers)

set(USERKEY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/userkey)

# One export set per part, so a consumer that asks only for a part
# (find_package(userkey COMPONENTS lb)) loads only that part's targets and
# finds only that part's dependencies: userkey::lb never needs mongo-c-driver.
foreach(part core backend lb)
  install(TARGETS userkey_${part} EXPORT userkey-${part}-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT userkey-${part}-targets NAMESPACE userkey:: DESTINATION ${USERKEY_CMAKE_DIR})
endforeach()
install(TARGETS userkey EXPORT userkey-umbrella-targets)
install(EXPORT userkey-umbrella-targets NAMESPACE userkey:: DESTINATION ${USERKEY_CMAKE_DIR})
install(DIRECTORY include/userkey DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

configure_package_config_file(cmake/userkeyConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/userkeyConfig.cmake
  INSTALL_DESTINATION ${USERKEY_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/userkeyConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/userkeyConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/userkeyConfigVersion.cmake
  DESTINATION ${USERKEY_CMAKE_DIR})

# The embedded dump, for `userkey-backend --dump <prefix>/share/userkey/dump`.
install(DIRECTORY dump/ DESTINATION ${CMAKE_INSTALL_DATADIR}/userkey/dump)
