/* malloc_tune.h - glibc malloc settings for spirt's long-lived processes.
 *
 * A step allocates the same large buffers on every call (tensors of a few
 * hundred KB, Redis replies, request bodies up to the body limit). With
 * glibc's defaults a block above the mmap threshold (128 KiB until the first
 * such free raises it) is mmapped and unmapped on every call, and freed
 * memory at the top of a thread's arena is handed back with madvise: the
 * next call faults every page in again. malloc_Tune keeps such blocks in the
 * arenas: it raises the mmap threshold to MALLOC_TUNE_MMAP (which also stops
 * glibc moving it), trims only past MALLOC_TUNE_TRIM of free space at the
 * top of an arena, and bounds the arenas to MALLOC_TUNE_ARENAS, so what a
 * process keeps is bounded by its working set, not by its connection count. */
#ifndef SPIRT_MALLOC_TUNE_H
#define SPIRT_MALLOC_TUNE_H

#define MALLOC_TUNE_MMAP (32u << 20)  /* glibc's largest allowed mmap threshold */
#define MALLOC_TUNE_TRIM (64u << 20)
/* In a 4-worker HTTP training run, 2, 4 and glibc's 8 per core used the
 * same CPU within the noise, and 2 held the least (peak RSS of evaluate
 * 34 MB instead of 78). */
#define MALLOC_TUNE_ARENAS 2

/* Applies the settings above, once, first thing in main(); returns 1 if it
 * did, 0 if GLIBC_TUNABLES already sets malloc tunables (the operator's
 * choice wins), SPIRT_MALLOC_TUNE=0 switches it off, or this is not glibc. */
int malloc_Tune(void);

#endif
