# Fails when a decode kernel meant to prefetch its weights has no prefetch instruction in the
# object code: the compiler may drop them silently (GCC 12 did, for three stops, from the AVX-512
# Q4_0 and Q8_0 steps: see kPrefetchAhead in src/ops/x86/kernels_x86.inc). For each object, each
# listed kernel's one-token code (its own function, or the tile it was inlined into) must hold at
# least one prefetch.
# Usage: cmake "-DOBJECTS=a.o|b.o" -P check_kernel_prefetches.cmake
find_program(OBJDUMP objdump REQUIRED)
string(REPLACE "|" ";" OBJECTS "${OBJECTS}")
# Per object (by file name): the kernels, each as a regular expression of the demangled names of
# the functions that may hold its one-token loop.
set(kernels_avx2
    "interleaved_tile<[^>]*Q4_0x8>|q4_0x8_tokens<1>"
    "interleaved_tile<[^>]*Q8_0x8>|q8_0x8_tokens<1>"
    "interleaved_tile<[^>]*Q4_Kx8>|k4x8_tokens<1>")
set(kernels_avx512
    "interleaved_tile<[^>]*Q6_Kx8>|q6_kx8_tokens<1>")
foreach(obj IN LISTS OBJECTS)
  get_filename_component(name "${obj}" NAME)
  if(name MATCHES "kernels_avx512")
    set(kernels ${kernels_avx512})
  elseif(name MATCHES "kernels_avx2")
    set(kernels ${kernels_avx2})
  else()
    continue()
  endif()
  execute_process(COMMAND ${OBJDUMP} -d -C --no-show-raw-insn ${obj}
                  OUTPUT_FILE ${obj}.dis RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${OBJDUMP} failed on ${obj}: ${rc} ${err}")
  endif()
  # The functions that hold a prefetch (their header lines: "<address> <name>:").
  file(STRINGS ${obj}.dis lines REGEX "^[0-9a-f]+ <.*>:$|prefetch")
  file(REMOVE ${obj}.dis)
  set(function "")
  set(with_prefetch "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9a-f]+ <(.*)>:$")
      set(function "${CMAKE_MATCH_1}")
    elseif(function)
      list(APPEND with_prefetch "${function}")
      set(function "")
    endif()
  endforeach()
  foreach(kernel IN LISTS kernels)
    set(found FALSE)
    foreach(f IN LISTS with_prefetch)
      if(f MATCHES "${kernel}")
        set(found TRUE)
      endif()
    endforeach()
    if(NOT found)
      message(FATAL_ERROR "${name}: no prefetch in the code of ${kernel}")
    endif()
  endforeach()
  list(LENGTH kernels n)
  message(STATUS "${name}: the ${n} decode kernels prefetch")
endforeach()
