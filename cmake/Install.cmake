# Installation and the find_package(userkey) package.
#
#   find_package(userkey CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE userkey::userkey)
#
# works the same as add_subdirectory(userkey): the alias userkey::userkey
# names the same target in both. The generated userkeyConfig.cmake finds
# every dependency the library links (find_dependency), since libuserkey is a
# static library whose users must link them too.
include(CMakePackageConfigHelpers)

set(USERKEY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/userkey)

install(TARGETS userkey EXPORT userkeyTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/userkey DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT userkeyTargets NAMESPACE userkey:: DESTINATION ${USERKEY_CMAKE_DIR})

configure_package_config_file(cmake/userkeyConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/userkeyConfig.cmake
  INSTALL_DESTINATION ${USERKEY_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/userkeyConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/userkeyConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/userkeyConfigVersion.cmake
  DESTINATION ${USERKEY_CMAKE_DIR})

# The embedded dump, for `userkey-backend --dump <prefix>/share/userkey/dump`.
install(DIRECTORY dump/ DESTINATION ${CMAKE_INSTALL_DATADIR}/userkey/dump)
