# Turns bpf/<name>.bpf.c into <name>.bpf.o and <name>.skel.h, and an INTERFACE target
# <name>_skel that C++ code links to include the skeleton. Modelled on libbpf-bootstrap's
# FindBpfObject.cmake, plus a clang depfile so that editing a shared header (the ABI header,
# a feature header) rebuilds the object and its skeleton.

find_program(BPF_CLANG NAMES clang clang-19 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(HRB_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${HRB_BPF_GEN_DIR})

# vmlinux.h from this kernel's BTF, made at configure time (CO-RE keeps objects portable).
set(HRB_VMLINUX_H ${HRB_BPF_GEN_DIR}/vmlinux.h)
if(NOT EXISTS ${HRB_VMLINUX_H})
  if(NOT EXISTS /sys/kernel/btf/vmlinux)
    message(FATAL_ERROR "/sys/kernel/btf/vmlinux is missing: this kernel has no BTF "
                        "(CONFIG_DEBUG_INFO_BTF=y is needed to build the BPF programs)")
  endif()
  execute_process(
    COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c
    OUTPUT_FILE ${HRB_VMLINUX_H}
    RESULT_VARIABLE _vmlinux_rc)
  if(NOT _vmlinux_rc EQUAL 0)
    file(REMOVE ${HRB_VMLINUX_H})
    message(FATAL_ERROR "bpftool btf dump of /sys/kernel/btf/vmlinux failed (${_vmlinux_rc})")
  endif()
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(HRB_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(HRB_BPF_ARCH arm64)
else()
  set(HRB_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(hrb_bpf_object name src)
  set(_obj ${HRB_BPF_GEN_DIR}/${name}.bpf.o)
  set(_skel ${HRB_BPF_GEN_DIR}/${name}.skel.h)
  set(_dep ${HRB_BPF_GEN_DIR}/${name}.bpf.d)
  get_filename_component(_abs ${src} ABSOLUTE)
  add_custom_command(
    OUTPUT ${_obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${HRB_BPF_ARCH}
            -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
            -I${HRB_BPF_GEN_DIR} -I${PROJECT_SOURCE_DIR}/bpf/include -I${PROJECT_SOURCE_DIR}/bpf
            -MD -MF ${_dep} -c ${_abs} -o ${_obj}
    DEPENDS ${_abs}
    DEPFILE ${_dep}
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${_skel}
    COMMAND ${BPFTOOL} gen skeleton ${_obj} name ${name} > ${_skel}
    DEPENDS ${_obj}
    COMMENT "BPF skeleton ${name}.skel.h")
  add_custom_target(${name}_skel_gen DEPENDS ${_skel} ${_obj})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${HRB_BPF_GEN_DIR}
                             ${PROJECT_SOURCE_DIR}/bpf/include)
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  # The object path, for tests that load the real compiled object by file.
  set_property(GLOBAL APPEND PROPERTY HRB_BPF_OBJECTS ${_obj})
endfunction()
