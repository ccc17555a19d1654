/* ctest-label: unit (starts no server) */
/* test_malloc_tune.c - malloc_Tune keeps large blocks in the arenas (a
 * megabyte is no longer mmapped), and steps aside for the operator's
 * GLIBC_TUNABLES or SPIRT_MALLOC_TUNE=0. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/malloc_tune.h"

/* Bytes of this process's malloc held in mmapped blocks. */
static size_t mmapped(void) { return mallinfo2().hblkhd; }

static void steps_aside(void **state)
{
    (void)state;
    setenv("SPIRT_MALLOC_TUNE", "0", 1);
    assert_int_equal(malloc_Tune(), 0);
    unsetenv("SPIRT_MALLOC_TUNE");
    setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=1", 1);
    assert_int_equal(malloc_Tune(), 0);
    unsetenv("GLIBC_TUNABLES");
}

static void large_blocks_stay_in_the_arena(void **state)
{
    (void)state;
    size_t before = mmapped();
    char *p = malloc(4u << 20);
    assert_non_null(p);
    int default_mmaps = mmapped() > before;
    free(p);
    if (!malloc_Tune())
        skip(); /* a sanitizer's allocator ignores mallopt */
    assert_true(default_mmaps); /* glibc's default: 4 MiB is mmapped */
    for (int i = 0; i < 8; i++) {
        before = mmapped();
        p = malloc((size_t)(i + 1) << 20);
        assert_non_null(p);
        memset(p, 1, (size_t)(i + 1) << 20);
        assert_int_equal(mmapped(), before);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(steps_aside),
        cmocka_unit_test(large_blocks_stay_in_the_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
