# The Debian package (`cpack -G DEB` in the build folder, or scripts/package.sh): the install tree of
# CMakeLists.txt plus the desktop entry, the icon, AppStream metainfo and a man page, the last two generated from
# the built binary (its --help through help2man; a heatmap it renders), so they follow the program.
set(_pkg ${CMAKE_BINARY_DIR}/packaging)
# Whoever publishes the package names themselves here (Debian's Maintainer field and the changelog's sign-off):
# `cmake -DATTNSCOPE_MAINTAINER="Name <address>"`. The default is a reserved domain (RFC 2606): a local build
# names no person.
set(ATTNSCOPE_MAINTAINER "attnscope maintainers <attnscope@example.org>" CACHE STRING
    "The Debian package's Maintainer: 'Name <address>'")
find_program(HELP2MAN help2man)
if(HELP2MAN)
  add_custom_command(OUTPUT ${_pkg}/attnscope.1.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_pkg}
    COMMAND ${CMAKE_SOURCE_DIR}/packaging/gen_man.sh $<TARGET_FILE:attnscope> ${_pkg}/attnscope.1
    COMMAND gzip -9nf ${_pkg}/attnscope.1
    DEPENDS attnscope ${CMAKE_SOURCE_DIR}/packaging/gen_man.sh VERBATIM)
  set(_man ${_pkg}/attnscope.1.gz)
  install(FILES ${_man} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(STATUS "help2man not found: no man page (apt-get install help2man)")
endif()
# The icon: a head's weights the built binary computes, drawn as SVG and 256 x 256 PNG by packaging/icon.cpp on the
# project's own canvas.
add_executable(attnscope_icon packaging/icon.cpp)
target_link_libraries(attnscope_icon PRIVATE attnscope_render)
target_compile_options(attnscope_icon PRIVATE ${ATTNSCOPE_WARNINGS})
add_custom_command(OUTPUT ${_pkg}/attnscope.svg ${_pkg}/attnscope.png
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_pkg}
  COMMAND ${CMAKE_COMMAND} -E env ATTNSCOPE_ASSETS=${CMAKE_SOURCE_DIR}/assets $<TARGET_FILE:attnscope> render
          --variant sliding_window --param window=4 --text "To be, or no" --layer 1 --head 2 --force
          -o ${_pkg}/icon.csv
  COMMAND $<TARGET_FILE:attnscope_icon> ${_pkg}/icon.csv ${_pkg}/attnscope.svg ${_pkg}/attnscope.png 256
  DEPENDS attnscope attnscope_icon VERBATIM)
# Debian's changelog (a native package's name) and copyright are required in every package's doc folder.
string(TIMESTAMP _date "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE ${_pkg}/changelog
  "attnscope (${PROJECT_VERSION}) unstable; urgency=low\n\n  * Package built from the attnscope source tree.\n\n"
  " -- ${ATTNSCOPE_MAINTAINER}  ${_date}\n")
add_custom_command(OUTPUT ${_pkg}/changelog.gz COMMAND gzip -9nkf ${_pkg}/changelog VERBATIM)
add_custom_target(attnscope_package_files ALL DEPENDS ${_man} ${_pkg}/attnscope.svg ${_pkg}/attnscope.png
                  ${_pkg}/changelog.gz)

install(FILES packaging/attnscope.desktop DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
install(FILES packaging/attnscope.metainfo.xml DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)
install(FILES ${_pkg}/attnscope.svg DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps)
install(FILES ${_pkg}/attnscope.png DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/256x256/apps)
install(FILES ${_pkg}/changelog.gz packaging/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})

# cpack installs what the package holds, not the tests and benchmarks of ALL (they would make it minutes).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME attnscope)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CONTACT "${ATTNSCOPE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "watch attention mechanisms work, live")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "attnscope compares attention variants side by side inside a small character GPT
 trained on Tiny Shakespeare: heatmaps per layer and head, sparsity, KV cache,
 timing and loss, in a desktop window and on the command line.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
# Libraries from dpkg-shlibdeps; the fonts are opened by path (not linked), so they are named here.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fonts-dejavu-core")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-pthread, libjemalloc2")
include(CPack)
