/* textio.h - internal helpers shared by the dataset loaders (not public API).
 *
 * A line reader over zlib (so text datasets may be gzip-compressed or plain,
 * read the same way), label collection with the LibSVM {-1,+1} mapping, and
 * growable arrays. Every error names the file and line. */
#ifndef SPIRT_DATA_TEXTIO_H
#define SPIRT_DATA_TEXTIO_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "core/status.h"
#include "data/dataset.h"

/* Lines longer than this are treated as a corrupt (or binary) file. */
#define TEXTIO_MAX_LINE ((size_t)64 << 20)
/* Labels above this are rejected: classes size the model's output layer. */
#define TEXTIO_MAX_LABEL 65535

typedef struct {
    gzFile f;
    const char *path;
    char *buf;
    size_t cap, start, end;
    long line;   /* 1-based number of the line last returned */
    int eof;
} textio_reader;

spStatus textio_Open(textio_reader *r, const char *path);
/* At the end of a file read through zlib: an error when a gzip stream was
 * cut short. zlib's gzread reports that only as an end of file (with
 * Z_BUF_ERROR left for gzerror), so a truncated .gz would otherwise read
 * as a complete, shorter file. `what` says where (e.g. "after line 7"). */
spStatus textio_GzEnd(gzFile f, const char *path, const char *what);
/* Next line, NUL-terminated, without "\n" or "\r\n". *line = NULL at EOF. */
spStatus textio_Next(textio_reader *r, char **line, size_t *len);
/* Next line that is not blank, from its first non-blank character;
 * *p = NULL at EOF. */
spStatus textio_NextData(textio_reader *r, char **p);
void textio_Close(textio_reader *r);

/* Raw labels as read, with what the {-1,+1} -> {0,1} and 1..K -> 0..K-1
 * mappings need. */
typedef struct {
    int32_t *v;
    size_t n, cap;
    long first_neg_line;    /* first line with label -1 (0 = none) */
    long first_other_line;  /* first line with a label other than -1/+1 */
    int32_t first_other;
    int32_t max;
    long first_zero_line;   /* first line with label 0 (0 = none) */
} textio_labels;

/* Parses a label token (an integral number >= -1) and appends it. */
spStatus textio_AddLabel(textio_labels *l, const char *path, long line, double value);
/* Maps labels in place ({-1,+1} -> {0,1}; 1..K with no 0 and some label
 * above 1 -> 0..K-1; else kept) and fills d->y / d->classes (takes
 * ownership of v). */
spStatus textio_FinishLabels(textio_labels *l, const char *path, dataset *d);

/* Space or tab: what separates fields and pads lines in the text formats. */
static inline int textio_IsBlank(char c) { return c == ' ' || c == '\t'; }

/* Ends a text loader: on failure frees *d and returns s; on success makes
 * *d a flat (1 x 1 x dim) image set and moves it to *out. */
spStatus textio_Deliver(spStatus s, dataset *d, dataset *out);

/* Grows *p (elements of `size` bytes) to hold at least `need`. */
spStatus textio_Grow(void **p, size_t *cap, size_t need, size_t size);

/* n*dim floats, 64-byte aligned, uninitialised; SP_ERR_NOMEM / SP_ERR_INVALID
 * (size overflow) with a message. */
spStatus textio_AllocRows(size_t n, size_t dim, float **out);

#endif
