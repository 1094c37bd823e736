# Fails when an object compiled with ISA flags defines a weak (W, V) or unique (u) symbol: such a
# symbol (an inline function or template instance also used elsewhere) may be the copy the linker
# keeps for the whole program, so baseline code would run AVX2/dotprod instructions.
# Usage: cmake "-DOBJECTS=a.o|b.o" -P check_isa_symbols.cmake
find_program(NM nm REQUIRED)
string(REPLACE "|" ";" OBJECTS "${OBJECTS}")
foreach(obj IN LISTS OBJECTS)
  execute_process(COMMAND ${NM} -C --defined-only ${obj} OUTPUT_VARIABLE syms RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${obj}: ${rc} ${err}")
  endif()
  string(REGEX MATCHALL "[^\n]* [WVu] [^\n]*" shared "${syms}")
  if(shared)
    string(REPLACE ";" "\n" shared "${shared}")
    message(FATAL_ERROR "${obj} defines shared symbols (move them into the anonymous namespace):\n${shared}")
  endif()
endforeach()
message(STATUS "no shared symbols in ${OBJECTS}")
