/* progress.h - the training progress display.
 *
 * On a terminal: one line redrawn in place with a bar, iteration, loss and
 * samples/s. Otherwise (CI logs, pipes): a plain line at most every few
 * seconds and at each epoch end, so logs stay readable. */
#ifndef SPIRT_PROGRESS_H
#define SPIRT_PROGRESS_H

#include <stdio.h>

#include "driver/train.h"

typedef struct {
    FILE *out;
    int tty;
    int quiet;
    double start, last_draw;
    int epochs;
    char label[64];
    long last_samples;
} progress;

void progress_Init(progress *p, FILE *out, const char *label, int epochs, int quiet);
/* An observer that draws into p. */
train_observer progress_Observer(progress *p);

#endif
