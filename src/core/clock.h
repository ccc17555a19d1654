/* clock.h - monotonic time for timings, deadlines and rates. */
#ifndef SPIRT_CLOCK_H
#define SPIRT_CLOCK_H

#include <stdint.h>

/* Monotonic seconds (sub-microsecond resolution) and milliseconds. */
double clock_Now(void);
int64_t clock_NowMs(void);

#endif
