// fm_isa.h: which instruction-set level to run, shared by the GEMM (fm_microkernel.c) and the
// activations (fm_activations.c). Each family keeps its own table of levels and its own cached choice;
// these two functions are the CPU detection and the FASTMLP_ISA rule they have in common.
//
// Level names, fastest first: avx512 (AVX-512F), avx2 (AVX2 and FMA), baseline (16-byte vectors: SSE2
// on any x86-64, NEON on arm64), reference (plain loops; only the GEMM has it).
#ifndef FM_ISA_H
#define FM_ISA_H

// The levels compiled into this build: avx512 and avx2 on x86, unless FM_WITHOUT_AVX512 or
// FM_WITHOUT_AVX2 leaves one out (setup.py's editable builds compile only the levels the build machine
// runs; a wheel has them all). The files of a level left out compile to nothing, and the tables skip it.
#if (defined(__x86_64__) || defined(__i386__)) && !defined(FM_WITHOUT_AVX512)
#define FM_HAS_AVX512 1
#else
#define FM_HAS_AVX512 0
#endif
#if (defined(__x86_64__) || defined(__i386__)) && !defined(FM_WITHOUT_AVX2)
#define FM_HAS_AVX2 1
#else
#define FM_HAS_AVX2 0
#endif

// fm_cpu_runs: 1 if this CPU runs the level named level, else 0.
//   "avx512" needs AVX-512F and "avx2" needs AVX2 and FMA; on a CPU that is not x86 both give 0. Any
//   other name (baseline, reference) gives 1. Safe to call from several threads.
int fm_cpu_runs(const char *level);

// fm_isa_choose: the index into names[0 .. count-1] of the level to use.
//   names are one family's levels, fastest first, the last one running on every CPU (count >= 1).
//   The start is the level named by the environment variable FASTMLP_ISA (avx512|avx2|baseline|
//   reference); a known name the family lacks starts from its next slower level, or from its slowest
//   when it has none slower ("reference" for the activations means baseline); unset or unknown starts
//   from the fastest. From the start, the first level fm_cpu_runs; failing that, count - 1.
//   Reads the environment on every call: callers cache the answer.
int fm_isa_choose(const char *const *names, int count);

#endif
