#ifndef SLUICE_CLIBFUZZER_H
#define SLUICE_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

// libFuzzer's driver, for a fuzz target that has a `main` of its own (SwiftPM gives every
// executable one). Defined by libclang_rt.fuzzer, linked by `-sanitize=fuzzer`; referenced only
// in fuzzing builds.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
