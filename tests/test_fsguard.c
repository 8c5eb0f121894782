/* What protects a results directory: the hash set behind the linear
 * duplicate checks, the directory lock (a second holder fails at once
 * naming the first; a lock a killed process left is taken over), the
 * temporaries a signal handler removes, the sweep of those a SIGKILL left,
 * and bsc_path_within. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batchscope/fsutil.h"
#include "batchscope/hashset.h"
#include "testutil.h"

static void test_hashset(void **state)
{
    (void)state;
    enum { N = 200000 };
    long *keys = malloc(N * sizeof *keys);
    bsc_hashset *h = NULL;
    assert_int_equal(bsc_hashset_new(0, &h), BSC_OK);
    for (long i = 0; i < N; i++) {
        keys[i] = i * 7919;
        size_t prev = 0;
        assert_int_equal(bsc_hashset_add(h, &keys[i], sizeof keys[i], (size_t)i, &prev), BSC_OK);
        assert_true(prev == BSC_HASHSET_NEW);
    }
    assert_int_equal(bsc_hashset_count(h), N);
    /* an equal key (other memory, same bytes) finds the first one's value */
    long again = 1234L * 7919, absent = -5;
    size_t prev = 0;
    assert_int_equal(bsc_hashset_add(h, &again, sizeof again, 99, &prev), BSC_OK);
    assert_int_equal(prev, 1234);
    assert_int_equal(bsc_hashset_count(h), N);
    assert_true(bsc_hashset_find(h, &absent, sizeof absent) == BSC_HASHSET_NEW);
    /* strings of different lengths with a common prefix are different keys */
    assert_int_equal(bsc_hashset_add(h, "ab", 2, 1, &prev), BSC_OK);
    assert_true(prev == BSC_HASHSET_NEW);
    assert_int_equal(bsc_hashset_add(h, "abc", 3, 2, &prev), BSC_OK);
    assert_true(prev == BSC_HASHSET_NEW);
    assert_int_equal(bsc_hashset_add(h, "", 0, 3, &prev), BSC_OK);
    assert_true(prev == BSC_HASHSET_NEW);
    assert_int_equal(bsc_hashset_find(h, "", 0), 3);
    bsc_hashset_free(h);
    free(keys);
}

/* The pid of a process that has just exited (and been reaped): one that
 * certainly holds no lock. */
static long dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    assert_true(pid > 0);
    waitpid(pid, NULL, 0);
    return (long)pid;
}

static void test_dir_lock(void **state)
{
    const char *dir = *state;
    bsc_dir_lock a = {-1, NULL}, b = {-1, NULL};
    long stale = -1;
    assert_int_equal(bsc_dir_lock_acquire(&a, dir, &stale), BSC_OK);
    assert_int_equal(stale, 0);
    /* A second holder -- another open of the file, as another process
     * would have -- fails at once, naming this pid. */
    time_t t0 = time(NULL);
    assert_int_equal(bsc_dir_lock_acquire(&b, dir, &stale), BSC_ERR_BUSY);
    assert_true(time(NULL) - t0 < 2);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_non_null(strstr(bsc_last_error(), pid));
    assert_non_null(strstr(bsc_last_error(), dir));
    bsc_dir_lock_release(&a);
    bsc_dir_lock_release(&a); /* twice is fine */
    assert_int_equal(bsc_dir_lock_acquire(&b, dir, &stale), BSC_OK);
    bsc_dir_lock_release(&b);

    /* A lock file left by a process that died with it: taken over, and the
     * dead holder named. */
    long dead = dead_pid();
    char text[32];
    snprintf(text, sizeof text, "%ld\n", dead);
    free(tu_write(dir, ".batchscope.lock", text));
    assert_int_equal(bsc_dir_lock_acquire(&a, dir, &stale), BSC_OK);
    assert_int_equal(stale, dead);
    bsc_dir_lock_release(&a);

    /* A child holding it: the parent is refused with the child's pid. */
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t child = fork();
    if (child == 0) {
        bsc_dir_lock c = {-1, NULL};
        char x = bsc_dir_lock_acquire(&c, dir, NULL) == BSC_OK ? 'y' : 'n';
        if (write(go[1], &x, 1) != 1 || read(done[0], &x, 1) != 1)
            _exit(2);
        _exit(0);
    }
    char x = 0;
    assert_int_equal(read(go[0], &x, 1), 1);
    assert_int_equal(x, 'y');
    assert_int_equal(bsc_dir_lock_acquire(&b, dir, NULL), BSC_ERR_BUSY);
    snprintf(pid, sizeof pid, "pid %ld", (long)child);
    assert_non_null(strstr(bsc_last_error(), pid));
    /* killed, not released: the kernel drops the lock with the process */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_int_equal(bsc_dir_lock_acquire(&b, dir, &stale), BSC_OK);
    assert_int_equal(stale, (long)child);
    bsc_dir_lock_release(&b);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
}

static void test_temporaries(void **state)
{
    const char *dir = *state;
    /* what a signal handler removes: the afile being written, a tracked path */
    bsc_afile a;
    assert_int_equal(bsc_afile_open(&a, tu_path(dir, "x.csv")), BSC_OK);
    char *tmp = strdup(a.tmp);
    char *other = tu_write(dir, "fig.png.tmp.77", "half");
    bsc_temporary_track(other);
    assert_true(access(tmp, F_OK) == 0);
    bsc_temporaries_unlink();
    assert_true(access(tmp, F_OK) != 0);
    assert_true(access(other, F_OK) != 0);
    bsc_temporary_untrack(other);
    /* committed files are no longer tracked: a later unlink leaves them */
    bsc_afile_abort(&a);
    assert_int_equal(bsc_write_file_atomic(tu_path(dir, "y.csv"), "1\n", 2), BSC_OK);
    bsc_temporaries_unlink();
    assert_true(access(tu_path(dir, "y.csv"), F_OK) == 0);

    /* the sweep: only "<name>.tmp.<digits>" */
    free(tu_write(dir, "a.csv.tmp.123", "x"));
    free(tu_write(dir, "b.png.tmp.9", "x"));
    free(tu_write(dir, "keep.tmp.x1", "x"));
    free(tu_write(dir, ".tmp.5", "x"));
    free(tu_write(dir, "keep.csv", "x"));
    size_t n = 0;
    assert_int_equal(bsc_remove_stale_temporaries(dir, &n), BSC_OK);
    assert_int_equal(n, 2);
    assert_true(access(tu_path(dir, "a.csv.tmp.123"), F_OK) != 0);
    assert_true(access(tu_path(dir, "keep.tmp.x1"), F_OK) == 0);
    assert_true(access(tu_path(dir, ".tmp.5"), F_OK) == 0);
    assert_true(access(tu_path(dir, "keep.csv"), F_OK) == 0);
    assert_int_equal(bsc_remove_stale_temporaries(tu_path(dir, "nowhere"), &n), BSC_OK);
    assert_int_equal(n, 0);
    free(tmp);
    free(other);
}

static void test_path_within(void **state)
{
    (void)state;
    assert_true(bsc_path_within("out", "out/runs/bs8/final.safetensors"));
    assert_true(bsc_path_within("out/", "./out/runs/../runs/x"));
    assert_true(bsc_path_within("/a/b", "/a/b"));
    assert_false(bsc_path_within("out", "outside/x"));
    assert_false(bsc_path_within("out", "out/../x"));
    assert_false(bsc_path_within("/a/b", "/a"));
    assert_true(bsc_path_within("/", "/anything"));
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char abs[4200];
    snprintf(abs, sizeof abs, "%s/out/x", cwd);
    assert_true(bsc_path_within("out", abs));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashset),
        cmocka_unit_test_setup_teardown(test_dir_lock, tu_setup_tmpdir, tu_teardown_tmpdir),
        cmocka_unit_test_setup_teardown(test_temporaries, tu_setup_tmpdir, tu_teardown_tmpdir),
        cmocka_unit_test(test_path_within),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
