# add_harness_test(name SOURCES a.cpp ... LABELS unit|bpf|netns|slow [TIMEOUT s] [LIBS ...])
# One helper so every test binary is registered alike: GoogleTest discovery, labels a developer
# can select with `ctest -L`, and a timeout.
include(GoogleTest)
function(add_harness_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LABELS;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE hrb_harness GTest::gtest GTest::gtest_main ${T_LIBS})
  target_compile_definitions(${name} PRIVATE
    HRB_SOURCE_DIR="${PROJECT_SOURCE_DIR}" HRB_BINARY_DIR="${PROJECT_BINARY_DIR}")
  list(LENGTH T_LABELS _n)
  if(_n GREATER 1)
    # gtest_discover_tests cannot carry a list of labels through to the tests it generates:
    # a binary with several labels (e.g. netns;slow) is one ctest test.
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  else()
    gtest_discover_tests(${name}
      PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
      DISCOVERY_TIMEOUT 30)
  endif()
endfunction()
