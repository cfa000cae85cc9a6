/*
** fuzz.h — what the libFuzzer targets of tests/fuzz share.
**
** FUZZ_CHECK is an assert that does not go away with NDEBUG: a fuzz target
** checks properties of the code under test, and a release-type build must
** not silently stop checking them.  On failure it names the property and
** aborts, which libFuzzer reports as a crash with the input saved.
*/
#ifndef PROFEFS_FUZZ_H
#define PROFEFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                      \
      abort();                                                             \
    }                                                                      \
  } while (0)

/* libFuzzer's entry point, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* PROFEFS_FUZZ_H */
